// speedrun ui: the charts (uPlot) and the live updates of a running run. No build step, no CDN.
"use strict";

function readJSON(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

function chartOptions(title, seriesNames, width, yLabel = "val accuracy (%)") {
  return {
    title: title,
    width: width,
    height: 300,
    scales: { x: { time: false } },
    // Whole epochs on the x axis (uPlot would put ticks at 1.5 too).
    axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
           { label: yLabel }],
    legend: { live: true },
    series: [{ label: "epoch" }].concat(seriesNames.map((name, i) => ({
      label: name, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true,
      points: { show: true, size: 4 },
    }))),
  };
}

// The run page: val accuracy, losses and epoch time by epoch, each a chart, growing while the run
// trains (polls /api/runs/ID/live?after=N).
const RUN_CHARTS = [
  { holder: "chart", title: "Val accuracy", y: "val accuracy (%)", keys: ["val_acc"], names: ["val acc"] },
  { holder: "chart-loss", title: "Loss", y: "loss", keys: ["train_loss", "val_loss"], names: ["train loss", "val loss"] },
  { holder: "chart-time", title: "Epoch time", y: "seconds", keys: ["duration_s"], names: ["epoch time"] },
];

function runChart() {
  const data = readJSON("chart-data");
  if (!data || !document.getElementById("chart")) return;
  const s = data.series;
  const charts = [];
  for (const spec of RUN_CHARTS) {
    const holder = document.getElementById(spec.holder);
    if (!holder) continue;
    // A series the run never logged (no val loss in an imported log) is left out, not drawn empty;
    // so is a chart with nothing logged at all (no epoch times in a notebook's table), but for the first.
    const logged = spec.keys.filter((k) => s[k].some((v) => v !== null));
    if (!logged.length && spec.holder !== "chart") {
      holder.hidden = true;
      continue;
    }
    const keys = logged.length ? logged : spec.keys.slice(0, 1);
    const names = keys.map((k) => spec.names[spec.keys.indexOf(k)]);
    const columns = [s.epoch.slice()].concat(keys.map((k) => s[k].slice()));
    const plot = new uPlot(chartOptions(spec.title, names, holder.clientWidth || 800, spec.y), columns, holder);
    holder.dataset.points = String(s.epoch.length);
    charts.push({ holder, keys, columns, plot });
  }
  if (!data.live) return;
  let last = s.epoch.length ? s.epoch[s.epoch.length - 1] : 0;
  const root = document.querySelector("nav a").getAttribute("href");
  const timer = setInterval(async () => {
    const response = await fetch(`${root}api/runs/%23${data.id}/live?after=${last}`);
    if (!response.ok) return;
    const live = await response.json();
    for (const e of live.new_epochs) {
      for (const chart of charts) {
        chart.columns[0].push(e.epoch);
        chart.keys.forEach((k, i) => chart.columns[i + 1].push(e[k] === undefined ? null : e[k]));
      }
      last = e.epoch;
    }
    if (live.new_epochs.length) {
      for (const chart of charts) {
        chart.plot.setData(chart.columns);
        chart.holder.dataset.points = String(chart.columns[0].length);
      }
    }
    document.getElementById("run-epochs").textContent = live.epochs_completed;
    document.getElementById("run-status").textContent = live.status;
    if (live.final_val_acc !== null) document.getElementById("run-final").textContent = live.final_val_acc.toFixed(2);
    if (live.status !== "running") clearInterval(timer);
  }, Number(document.body.dataset.poll || 2000));
}

// The compare page: each side's val accuracy (a group's mean), aligned as `speedrun compare` aligns them.
function compareChart() {
  const curve = readJSON("compare-data");
  const names = readJSON("compare-sides");
  const holder = document.getElementById("chart");
  if (!curve || !holder) return;
  const shown = curve.sides.map((i) => names[i]);
  const columns = [curve.rows.map((r) => r.at)];
  shown.forEach((_, k) => columns.push(curve.rows.map((r) => r.val_acc[k])));
  const options = chartOptions("Val accuracy", shown, holder.clientWidth || 800);
  options.axes[0].label = curve.key === "epoch" ? "epoch" : "seconds of training";
  if (curve.key !== "epoch") delete options.axes[0].incrs;
  // A group is drawn as its mean with a band of ± one standard deviation across its runs.
  options.bands = [];
  shown.forEach((name, k) => {
    const std = curve.rows.map((r) => r.val_acc_std ? r.val_acc_std[k] : null);
    if (!std.some((v) => v !== null)) return;
    const colour = COLOURS[k % COLOURS.length];
    const upper = columns.length, lower = columns.length + 1;
    columns.push(curve.rows.map((r, i) => std[i] === null ? null : r.val_acc[k] + std[i]));
    columns.push(curve.rows.map((r, i) => std[i] === null ? null : r.val_acc[k] - std[i]));
    options.series.push({ label: `${name} + std`, stroke: colour, width: 0, points: { show: false } });
    options.series.push({ label: `${name} − std`, stroke: colour, width: 0, points: { show: false } });
    options.bands.push({ series: [upper, lower], fill: colour + "33" });
  });
  new uPlot(options, columns, holder);
  holder.dataset.points = String(columns[0].length);
}

function columnPicker() {
  const form = document.getElementById("runs-form");
  if (!form) return;
  form.addEventListener("change", () => {
    const picked = Array.from(form.querySelectorAll(".col-pick:checked")).map((el) => el.value);
    form.querySelector("input[name=cols]").value = picked.join(",");
  }, true);
}

function showEqual() {
  const box = document.getElementById("show-equal");
  if (box) box.addEventListener("change", () => document.querySelector("table.compare").classList.toggle("show-equal", box.checked));
}

document.addEventListener("DOMContentLoaded", () => { runChart(); compareChart(); columnPicker(); showEqual(); });
