"""Graph model, GraphStore protocol, Neo4j and embedded stores, igraph projections."""
