// Job page: progress bar with a time estimate, then the result's charts.
import uPlot from "../vendor/uplot/uPlot.esm.js";

const root = document.getElementById("job");

function bars(container, labels, values, yLabel) {
  const width = container.clientWidth || 800;
  const opts = {
    width,
    height: 220,
    legend: { show: false },
    cursor: { show: false },
    // bars start at zero, with half a bar of room at either end
    scales: {
      x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] },
      y: { range: (u, min, max) => [0, (max || 1) * 1.1] },
    },
    axes: [
      { values: (u, ticks) => ticks.map((i) => labels[i] ?? ""), rotate: -45, size: 60 },
      { label: yLabel },
    ],
    series: [{}, { stroke: "#2f6fed", fill: "rgba(47,111,237,0.35)", paths: uPlot.paths.bars({ size: [0.8] }) }],
  };
  container.innerHTML = "";
  new uPlot(opts, [labels.map((_, i) => i), values], container);
}

function showResult(result) {
  document.getElementById("result").hidden = false;
  document.getElementById("frames").textContent = result.frames;
  document.getElementById("valid").textContent = `${(100 * result.valid_fraction).toFixed(1)} %`;
  document.getElementById("residual").textContent =
    `${result.mean_residual_mm.toFixed(2)} mm mean, ${result.median_residual_mm.toFixed(2)} mm median`;
  const edges = result.residual_histogram.edges_mm;
  const binLabels = edges.slice(0, -1).map((edge) => edge.toFixed(0));
  bars(document.getElementById("histogram"), binLabels, result.residual_histogram.counts, "frames");
  bars(document.getElementById("per-joint"), result.joint_names, result.per_joint_residual_mm, "mm");
}

function formatSeconds(seconds) {
  if (seconds == null) return "—";
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

async function poll() {
  const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
  const job = await response.json();
  const badge = document.getElementById("status");
  badge.textContent = job.status_label;
  badge.className = `status ${job.status}`;
  const bar = document.getElementById("progress");
  bar.max = job.total || 1;
  bar.value = job.done;
  document.getElementById("progress-text").textContent = `${job.done} / ${job.total} frames`;
  document.getElementById("eta").textContent = formatSeconds(job.seconds_left);
  document.getElementById("message").textContent = job.message;
  if (job.error) {
    const error = document.getElementById("error");
    error.textContent = job.error;
    error.hidden = false;
  }
  if (job.status === "complete") showResult(job.result);
  if (job.status === "queued" || job.status === "running") setTimeout(poll, 1000);
}

poll();
