package org.fraudnet.neo4j;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.SettingValueParsers;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * fraudnet's Neo4j launcher: Neo4j Community 5.26 as an embedded DBMS with the Bolt connector on 127.0.0.1.
 *
 * <p>Usage: {@code java <jvm flags> -cp "target/classes:lib/*" org.fraudnet.neo4j.Launcher --home DIR
 * [--port 7687] [--host 127.0.0.1] [--pagecache 512m] [--conf neo4j.conf]}.
 *
 * <p>Authentication is enabled when the environment variable {@code FRAUDNET_NEO4J_PASSWORD} is set (at least
 * 8 characters): the {@code neo4j} user's password is set to it through the system database, with
 * {@code CHANGE NOT REQUIRED}. Without it, authentication is off and the connector listens on 127.0.0.1 only.
 *
 * <p>When Bolt accepts connections, one line is printed to stdout:
 * {@code FRAUDNET_NEO4J_READY bolt://HOST:PORT auth=on|off}. SIGTERM / SIGINT shut the DBMS down cleanly.
 */
public final class Launcher {
    public static final String READY = "FRAUDNET_NEO4J_READY";
    public static final String PASSWORD_ENV = "FRAUDNET_NEO4J_PASSWORD";

    private Launcher() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = parseArgs(args);
        Path home = Paths.get(require(opts, "home")).toAbsolutePath();
        String host = opts.getOrDefault("host", "127.0.0.1");
        int port = Integer.parseInt(opts.getOrDefault("port", "7687"));
        String pagecache = opts.getOrDefault("pagecache", "512m");
        String password = System.getenv(PASSWORD_ENV);
        boolean auth = password != null && !password.isEmpty();
        Files.createDirectories(home);

        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        long t0 = System.nanoTime();

        if (auth) {
            if (password.length() < 8) {
                System.err.println("FRAUDNET_NEO4J_ERROR " + PASSWORD_ENV + " must have at least 8 characters");
                System.exit(2);
            }
            // Phase 1, Bolt off: set the password before any client can connect with the default one.
            DatabaseManagementService setup = builder(home, opts, pagecache, host, port, true, false).build();
            try {
                setup.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                        "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
            } finally {
                setup.shutdown();
            }
        }
        DatabaseManagementService dbms = builder(home, opts, pagecache, host, port, auth, true).build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            out.println("FRAUDNET_NEO4J_STOPPING");
            try {
                dbms.shutdown();
            } finally {
                stopped.countDown();
            }
            out.println("FRAUDNET_NEO4J_STOPPED");
        }, "fraudnet-neo4j-shutdown"));

        GraphDatabaseService db = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        ConnectorPortRegister ports = ((GraphDatabaseAPI) db).getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class);
        var bound = ports.getLocalAddress(ConnectorType.BOLT);
        double secs = (System.nanoTime() - t0) / 1e9;
        out.printf("%s bolt://%s:%d auth=%s started_in=%.2fs neo4j=%s%n", READY, host, bound.getPort(),
                auth ? "on" : "off", secs, org.neo4j.kernel.internal.Version.getNeo4jVersion());
        stopped.await();
    }

    private static DatabaseManagementServiceBuilder builder(Path home, Map<String, String> opts, String pagecache,
            String host, int port, boolean auth, boolean bolt) {
        DatabaseManagementServiceBuilder builder = new DatabaseManagementServiceBuilder(home);
        if (opts.containsKey("conf")) {
            builder.loadPropertiesFromFile(Paths.get(opts.get("conf")));
        }
        builder.setConfig(GraphDatabaseSettings.pagecache_memory, SettingValueParsers.BYTES.parse(pagecache))
                .setConfig(BoltConnector.enabled, bolt)
                .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .setConfig(BoltConnector.advertised_address, new SocketAddress(host, port))
                .setConfig(GraphDatabaseSettings.auth_enabled, auth);
        return builder;
    }

    private static String require(Map<String, String> opts, String key) {
        String v = opts.get(key);
        if (v == null) {
            System.err.println("FRAUDNET_NEO4J_ERROR missing --" + key);
            System.exit(2);
        }
        return v;
    }

    private static Map<String, String> parseArgs(String[] args) throws IOException {
        Map<String, String> opts = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || i + 1 >= args.length) {
                throw new IOException("bad argument: " + a + " (expected --name value)");
            }
            opts.put(a.substring(2), args[++i]);
        }
        return opts;
    }
}
