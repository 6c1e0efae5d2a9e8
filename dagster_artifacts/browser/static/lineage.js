// Draws the lineage graph the page embeds (#graph-data) with cytoscape.js and the dagre
// layered layout, both vendored under /static/vendor. Clicking a node opens its page.
// The graph is exposed as window.lineageGraph so scripts and tests can read its model.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var elements = [];
  data.nodes.forEach(function (node) {
    elements.push({ group: "nodes", data: node, classes: node.kind + (node.root ? " root" : "") });
  });
  data.edges.forEach(function (edge) {
    elements.push({ group: "edges", data: edge, classes: edge.kind + (edge.count > 1 ? " folded" : "") });
  });
  cytoscape.use(cytoscapeDagre);
  var cy = cytoscape({
    container: document.getElementById("graph"),
    elements: elements,
    wheelSensitivity: 0.3,
    style: [
      { selector: "node", style: {
          "label": "data(label)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center",
          "font-size": 13, "font-family": "system-ui, DejaVu Sans, sans-serif", "color": "#1f2430",
          "width": "label", "height": "label", "padding": "10px" } },
      { selector: "node.artifact", style: {
          "shape": "round-rectangle", "background-color": "#eef2ff", "border-width": 2, "border-color": "#4f46e5" } },
      { selector: "node.root", style: {
          "background-color": "#4f46e5", "color": "#ffffff", "border-color": "#312e81", "font-weight": "bold" } },
      { selector: "node.run", style: {
          "shape": "round-rectangle", "background-color": "#ccfbf1", "border-width": 2, "border-color": "#0f766e",
          "border-style": "dashed", "font-size": 12 } },
      { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.6, "arrow-scale": 1.1,
          "line-color": "#94a3b8", "target-arrow-color": "#94a3b8",
          "label": "data(label)", "font-size": 11, "color": "#6b7280",
          "text-background-color": "#ffffff", "text-background-opacity": 1, "text-background-padding": "2px" } },
      { selector: "edge.folded", style: { "width": 3, "line-color": "#f59e0b", "target-arrow-color": "#f59e0b", "color": "#b45309" } },
      { selector: "node:selected", style: { "overlay-opacity": 0.08 } }
    ],
    layout: { name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 70, edgeSep: 10 }
  });
  cy.on("tap", "node", function (event) {
    var url = event.target.data("url");
    if (url) { window.location.href = url; }
  });
  cy.on("mouseover", "node", function (event) {
    if (event.target.data("url")) { cy.container().style.cursor = "pointer"; }
  });
  cy.on("mouseout", "node", function () { cy.container().style.cursor = "default"; });
  // Size the canvas to the drawing: a long chain is wide and low, a fan-out tall.
  var container = cy.container();
  var box = cy.elements().boundingBox();
  var width = container.clientWidth;
  var height = Math.max(320, Math.min(720, Math.min(1.5, (width - 60) / box.w) * box.h + 80));
  container.style.height = height + "px";
  cy.resize();
  cy.fit(undefined, 30);
  if (cy.zoom() > 1.5) { cy.zoom(1.5); cy.center(); }
  window.lineageGraph = cy;
})();
