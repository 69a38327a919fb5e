// Draw every figure of the page with the site's one copy of plotly.js (no kernel, no network).
document.querySelectorAll("script.kalab-figure-spec").forEach((el) => {
  const spec = JSON.parse(el.textContent);
  const div = document.getElementById(el.dataset.target);
  Plotly.newPlot(div, spec.data, spec.layout, { displaylogo: false, responsive: true });
});
