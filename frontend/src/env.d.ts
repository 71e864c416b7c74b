// Type declarations for untyped modules: CSS side-effect imports and the Cytoscape extensions without types.
declare module "*.css";
declare module "cytoscape-fcose" {
  const ext: cytoscape.Ext;
  export default ext;
}
