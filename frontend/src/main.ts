// App shell: login with a token, header (language, user, logout), hash routes for the queue and lead views.

import "./style.css";
import { api, ApiError, getToken, setToken, setUnauthorizedHandler } from "./api";
import { append, clear, h, toast } from "./dom";
import { lang, onLangChange, setLang, t } from "./i18n";
import { renderLead, type LeadViewHandle, type Session } from "./lead";
import { renderQueue } from "./queue";

interface Debug {
  cy: unknown;
  chart: unknown;
  session: Session | null;
  route: string;
  ready: boolean;
}

declare global {
  interface Window {
    __fraudnet: Debug;
  }
}

const debug: Debug = { cy: null, chart: null, session: null, route: "", ready: false };
window.__fraudnet = debug;

let session: Session | null = null;
const RETURN_KEY = "fraudnet.return";
const handle: LeadViewHandle = { chart: null, destroy: () => {} };
const app = document.getElementById("app")!;
const header = h("header", { class: "topbar no-print" });
const main = h("main", { id: "view" });
app.append(header, main);

function go(hash: string): void {
  if (location.hash === hash) void route();
  else location.hash = hash;
}

function renderHeader(): void {
  clear(header);
  append(header,
    h("a", { class: "brand", href: "#/queue" }, h("span", { class: "logo" }, "◆"), t("app.brand")),
    session ? h("nav", {}, h("a", { href: "#/queue", id: "nav-queue" }, t("nav.queue"))) : null,
    h("span", { class: "spacer" }),
    h("button", { class: "ghost", id: "lang-toggle", "data-lang": lang(),
      onclick: () => setLang(lang() === "zh" ? "en" : "zh") }, t("nav.lang")),
    session ? h("span", { class: "who", id: "who", "data-role": session.role },
      `${session.user} · ${t(`role.${session.role}`)}`) : null,
    session ? h("button", { class: "ghost", id: "logout", onclick: logout }, t("nav.logout")) : null,
  );
}

function logout(): void {
  setToken(null);
  session = null;
  debug.session = null;
  go("#/login");
}

function renderLogin(message = ""): void {
  const tokenInput = h("textarea", { id: "token", rows: 3, placeholder: "fn_…", autocomplete: "off",
    spellcheck: "false" });
  const err = h("p", { class: "error", id: "login-error" }, message);
  const form = h("form", { class: "login card", id: "login-form" },
    h("h1", {}, t("login.title")),
    h("p", { class: "muted" }, t("login.help")),
    h("label", {}, t("login.token"), tokenInput),
    h("button", { type: "submit", class: "primary" }, t("login.submit")),
    err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = tokenInput.value.trim();
    if (!token) return;
    try {
      const me = await api.me(token);
      setToken(token);
      session = { user: me.user, role: me.role };
      debug.session = session;
      renderHeader();
      // Back to where the link pointed (a lead or case file opened in a new tab), else the queue.
      const wanted = sessionStorage.getItem(RETURN_KEY);
      sessionStorage.removeItem(RETURN_KEY);
      go(wanted && wanted.startsWith("#/") && !wanted.startsWith("#/login") ? wanted : "#/queue");
    } catch (e) {
      err.textContent = e instanceof ApiError && (e.status === 401 || e.status === 403)
        ? t("login.bad") : t("login.unreachable", { msg: (e as Error).message });
    }
  });
  clear(main);
  main.append(h("div", { class: "login-wrap" }, form));
  tokenInput.focus();
}

async function ensureSession(): Promise<boolean> {
  if (session) return true;
  if (!getToken()) return false;
  try {
    const me = await api.me();
    session = { user: me.user, role: me.role };
    debug.session = session;
    renderHeader();
    return true;
  } catch {
    setToken(null);
    return false;
  }
}

async function route(): Promise<void> {
  debug.ready = false;
  handle.destroy();
  handle.destroy = () => {};
  handle.snapshotNow = undefined;
  handle.chart = null;
  debug.cy = null;
  debug.chart = null;
  const hash = location.hash || "#/queue";
  debug.route = hash;
  document.body.dataset.view = "";
  if (hash.startsWith("#/login") || !(await ensureSession())) {
    if (!hash.startsWith("#/login") && hash !== "#/queue") sessionStorage.setItem(RETURN_KEY, hash);
    renderHeader();
    document.body.dataset.view = "login";
    renderLogin();
    debug.ready = true;
    return;
  }
  renderHeader();
  const [path, query = ""] = hash.slice(1).split("?", 2);
  try {
    if (path.startsWith("/lead/")) {
      document.body.dataset.view = "lead";
      const id = decodeURIComponent(path.slice("/lead/".length));
      await renderLead(main, id, session!, go, handle, Object.fromEntries(new URLSearchParams(query)));
      const chart = handle.chart as { cy: unknown } | null;
      debug.chart = chart;
      debug.cy = chart ? chart.cy : null;
    } else {
      document.body.dataset.view = "queue";
      await renderQueue(main, Object.fromEntries(new URLSearchParams(query)), go);
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    console.error(e);
    clear(main);
    const msg = e instanceof ApiError && e.status === 404 ? t("err.not_found") : (e as Error).message;
    main.append(h("p", { class: "error pad" }, t("err.generic", { msg })));
    toast(t("err.generic", { msg }), "error");
  }
  if (hash === (location.hash || "#/queue")) debug.ready = true;
}

setUnauthorizedHandler(() => {
  if (location.hash.startsWith("#/lead/")) sessionStorage.setItem(RETURN_KEY, location.hash);
  setToken(null);
  session = null;
  renderHeader();
  renderLogin(t("login.bad"));
});

onLangChange(() => {
  handle.snapshot = handle.chart && handle.snapshotNow ? handle.snapshotNow() : null;
  void route();
});

window.addEventListener("hashchange", () => void route());
document.title = t("app.title");
void route();
