/* A case's chart (uPlot, vendored: window.uPlot), in China time whatever the browser's zone:
   - an outlet's case: the factor's valid hourly (or, for a daily rule, daily) means and raw
     values against its emission limit, drawn only where the factor has one — never a rule's
     own threshold (a duration, a rate) as if it were a limit;
   - a power meter's case: the production and control devices' power on one time axis with
     their on/off thresholds, and the order's window for C5/C6.
   The rule's window (case.quantity.since … until) is shaded. The chart follows its box's
   width (a phone turned, a window resized). */
import { api, chinaParts, el, fmtNum, fmtTime } from "./core.js";
import { t } from "./i18n.js";
import { fmtQty, unitName } from "./widgets.js";

const HOUR = 3600;
const DAY_RULES = new Set(["A4", "A5-1"]); // judged on daily means
const COLORS = ["#0b5394", "#2e7d32", "#6a1b9a", "#ef6c00"];
const LIMIT = "#c62828";
const WARNING = "#e65100"; // 预警值, beside the red of the limit
const sec = (iso) => new Date(iso).getTime() / 1000;
const isoOf = (s) => new Date(s * 1000).toISOString();
const WINDOW_FILL = { alarm: "rgba(198, 40, 40, 0.13)", warning: "rgba(199, 119, 0, 0.15)" };

let chart = null;
let watcher = null;

export async function drawChart(detail) {
  const host = document.getElementById("chart");
  const c = detail.case;
  let plot;
  try {
    if (detail.source_kind === "other") plot = trailPlot(detail);
    else plot = detail.source_kind === "meter" && detail.meters.length ? await meterPlot(detail) : await outletPlot(detail);
  } catch (err) {
    plot = trailPlot(detail); // no series for this source: the case's own evidence
  }
  const title = document.getElementById("chart-title");
  title.dataset.i18n = plot.title; // the page's language switch keeps it
  title.textContent = t(plot.title);
  document.getElementById("chart-note").replaceChildren(...plot.notes.map((n) => el("span", {}, n)));
  if (chart) { chart.destroy(); chart = null; }
  host.replaceChildren();
  if (!window.uPlot || !plot.data[0].length) {
    host.append(el("p", { class: "empty" }, t("chart.no_data")));
    return;
  }
  const height = () => (host.clientWidth < 560 ? 240 : 300);
  const opts = {
    width: host.clientWidth || 320, height: height(),
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Asia/Shanghai"),
    legend: { live: true },
    series: [{ label: t("case.time"), value: (u, v) => (v == null ? "—" : fmtTime(v * 1e3)) }, ...plot.series.map((s) => ({
      value: (u, v) => fmtNum(v, ""), points: { show: false }, spanGaps: false, ...s,
    }))],
    axes: [{ space: 60, values: (u, splits) => splits.map((s) => {
      const p = chinaParts(new Date(s * 1e3));
      return p.hour === "00" && p.minute === "00" ? `${p.month}-${p.day}` : `${p.hour}:${p.minute}`;
    }) }, { label: unitName(plot.unit), size: 52 }],
    scales: {
      x: plot.range ? { range: () => plot.range } : {},
      y: { range: (u, lo, hi) => yRange(lo, hi, plot.lines.map((l) => l.y)) },
    },
    hooks: { drawClear: [(u) => paintBands(u, plot.bands)], draw: [(u) => paintLines(u, plot.lines)] },
  };
  chart = new window.uPlot(opts, plot.data, host);
  if (watcher) watcher.disconnect();
  if (window.ResizeObserver) {
    let width = host.clientWidth;
    watcher = new ResizeObserver(() => {
      if (!chart || host.clientWidth === width) return;
      width = host.clientWidth;
      chart.setSize({ width, height: height() });
    });
    watcher.observe(host);
  }
}

function yRange(lo, hi, lines) {
  const values = [lo, hi, ...lines].filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  if (!values.length) return [0, 1];
  const min = Math.min(0, ...values);
  const max = Math.max(...values);
  return [min, max === min ? min + 1 : max + (max - min) * 0.08];
}

/* Shaded windows behind the series: the rule's window, orders, marked periods. */
function paintBands(u, bands) {
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  for (const b of bands) {
    let x0 = Math.max(left, u.valToPos(b.from, "x", true));
    let x1 = Math.min(left + width, u.valToPos(b.to, "x", true));
    if (x1 < left || x0 > left + width) continue;
    if (x1 - x0 < 3) { x0 -= 1.5; x1 += 1.5; } // an instant: a thin mark
    ctx.fillStyle = b.fill;
    ctx.fillRect(x0, top, x1 - x0, height);
  }
  ctx.restore();
}

/* Horizontal thresholds that are not series (a meter's on/off power): dashed, labelled at
   the right end where a label has room (the note under the chart lists them all). */
function paintLines(u, lines) {
  const { ctx } = u;
  const { left, width } = u.bbox;
  const px = devicePixelRatio;
  ctx.save();
  ctx.font = `${Math.round(11 * px)}px sans-serif`;
  ctx.textAlign = "right";
  ctx.textBaseline = "bottom";
  const labelled = [];
  for (const l of [...lines].sort((a, b) => b.y - a.y)) {
    const y = u.valToPos(l.y, "y", true);
    ctx.strokeStyle = l.stroke; ctx.fillStyle = l.stroke;
    ctx.lineWidth = px;
    ctx.setLineDash([4 * px, 4 * px]);
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
    if (labelled.every((other) => Math.abs(other - y) >= 16 * px)) {
      ctx.fillText(l.label, left + width - 4 * px, y - 2 * px);
      labelled.push(y);
    }
  }
  ctx.restore();
}

/* The x range: the data and the marked window, a little either side. */
function extent(times, windows) {
  const xs = [...times, ...windows.flat()].filter((x) => Number.isFinite(x));
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const pad = Math.max((hi - lo) * 0.03, 600);
  return [lo - pad, hi + pad];
}

/* An hour's (or a day's) mean holds over its whole period: drawn as a step, not a dot; an
   invalid or missing period is a gap. Periods start on the hour (or China midnight). */
function steps(points, length, value) {
  const m = new Map(points.map((p) => [sec(p.t), value(p) ?? null]));
  const start = (x) => (length === HOUR ? Math.floor(x / HOUR) * HOUR : Math.floor((x + 8 * HOUR) / length) * length - 8 * HOUR);
  return { times: points.flatMap((p) => [sec(p.t), sec(p.t) + length - 1]), at: (x) => m.get(start(x)) ?? null };
}

/* Columns for uPlot on one time axis from point lists (a time another list has is undefined
   in this one: uPlot draws across it; null is a gap) or steps (a value at every time). */
function columns(lists) {
  const xs = lists.flatMap((list) => (Array.isArray(list) ? list.map(([x]) => x) : list.times));
  const times = [...new Set(xs)].sort((a, b) => a - b);
  return [times, ...lists.map((list) => {
    if (!Array.isArray(list)) return times.map(list.at);
    const m = new Map(list);
    return times.map((x) => m.get(x));
  })];
}

/* A time series with its outages as gaps: null after a silence of three usual intervals. */
function withGaps(points) {
  const gaps = points.slice(1).map(([x], i) => x - points[i][0]).sort((a, b) => a - b);
  const usual = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
  const out = [];
  points.forEach((p, i) => {
    if (i && usual && p[0] - points[i - 1][0] > 3 * usual) out.push([points[i - 1][0] + usual, null]);
    out.push(p);
  });
  return out;
}

function windowBand(c) {
  const q = c.quantity;
  return { from: sec(q.since), to: sec(q.until), fill: WINDOW_FILL[c.tier] || WINDOW_FILL.warning };
}

function windowNote(c) {
  const q = c.quantity;
  const span = q.since === q.until ? fmtTime(q.since) : `${fmtTime(q.since)} – ${fmtTime(q.until)}`;
  return `${t("chart.shaded")}：${q.name}${t("chart.window_of")} ${span}${q.ongoing ? `（${t("case.ongoing")}）` : ""}`;
}

/* The range to ask for: ``before`` ahead of the window, ``after`` past it, never past now. */
function span(q, before, after) {
  const since = sec(q.since) - before;
  const until = Math.max(since + HOUR, Math.min(sec(q.until) + after, Date.now() / 1000));
  return [since, until];
}

async function outletPlot(detail) {
  const c = detail.case;
  const [since, until] = span(c.quantity, 24 * HOUR, 6 * HOUR);
  const base = `/api/v1/enterprises/${encodeURIComponent(c.enterprise_id)}/outlets/${encodeURIComponent(c.source_id)}/series`;
  const s = await api("GET", `${base}?since=${encodeURIComponent(isoOf(since))}&until=${encodeURIComponent(isoOf(until))}`);
  const configured = s.factors.find((f) => f.configured) || s.factors[0];
  const factor = c.factor || (configured && configured.code) || Object.keys(s.hourly)[0];
  const info = s.factors.find((f) => f.code === factor) || { name: factor, unit: c.unit };
  const lim = (s.limits && s.limits[factor]) || null;
  const daily = DAY_RULES.has(c.rule);
  const means = ((daily ? s.daily : s.hourly)[factor]) || [];
  const converted = means.some((p) => p.converted !== null && p.converted !== undefined);
  const raw = ((s.raw && s.raw[factor]) || []).filter((r) => r.interval !== "hour" && r.interval !== "day");
  const meanName = `${t(daily ? "case.daily" : "case.hourly")}${converted ? t("chart.converted") : ""}`;
  const lists = [steps(means, daily ? 86400 : HOUR, (p) => (converted ? p.converted : p.value))];
  const series = [{ label: meanName, stroke: COLORS[0], width: 2 }];
  if (raw.length) {
    lists.push(withGaps(raw.map((r) => [sec(r.t), r.value ?? null])));
    series.push({ label: `${t("case.raw")}${converted ? t("chart.measured") : ""}`, stroke: "#7aa6d6", width: 1 });
  }
  const unit = (lim && lim.unit) || info.unit || c.unit;
  const notes = [];
  const given = (v) => v !== null && v !== undefined;
  const limit = lim ? (daily ? lim.day_alarm : lim.hour_alarm) : null;
  // 预警值: the warning level the rules warn above (derived from the limit, or, for an hour of
  // a water outlet with a daily limit only, that limit): drawn too, or a warning's chart
  // would show no line at all.
  const warning = lim ? (daily ? lim.day_warning : lim.hour_warning) : null;
  const per = t(daily ? "chart.per_day" : "chart.per_hour");
  const data = columns(lists);
  const range = extent(data[0], [[sec(c.quantity.since), sec(c.quantity.until)]]);
  const o2 = lim && given(lim.reference_o2) ? t("chart.reference_o2").replace("{o2}", lim.reference_o2) : "";
  if (given(limit)) {
    lists.push([[range[0], limit], [range[1], limit]]);
    series.push({ label: `${t("case.emission_limit")}（${per}）`, stroke: LIMIT, width: 2, dash: [6, 4], spanGaps: true });
    notes.push(`${t("chart.dashed_red")}：${t("case.emission_limit")} ${fmtQty(limit, unit)}（${per}${o2}）`);
  }
  if (given(warning) && warning !== limit) {
    lists.push([[range[0], warning], [range[1], warning]]);
    series.push({ label: `${t("case.warning_level")}（${per}）`, stroke: WARNING, width: 2, dash: [2, 3], spanGaps: true });
    notes.push(`${t("chart.dashed_orange")}：${t("case.warning_level")} ${fmtQty(warning, unit)}（${per}${o2}）`);
  }
  const lines = [];
  for (const [key, name] of [["value_high", "chart.value_high"], ["value_low", "chart.value_low"]]) {
    if (lim && lim[key] !== null && lim[key] !== undefined) {
      lines.push({ y: lim[key], stroke: LIMIT, label: `${t(name)} ${fmtQty(lim[key], unit)}` });
      notes.push(`${t(name)} ${fmtQty(lim[key], unit)}`);
    }
  }
  if (!notes.length) notes.push(`${info.name} ${t("chart.no_limit")}`);
  const bands = [windowBand(c)];
  notes.push(windowNote(c));
  const marked = (s.marked || []).filter((m) => !m.factor || m.factor === factor);
  for (const m of marked) bands.push({ from: sec(m.start), to: sec(m.end), fill: "rgba(120, 132, 143, 0.16)" });
  if (marked.length) notes.push(`${t("case.marked")}（${t("chart.grey")}）：${marked.map((m) => `${fmtTime(m.start)}–${fmtTime(m.end)} ${t(`mark.${m.type}`)}`).join("；")}`);
  return { title: "case.chart", data: columns(lists), series, unit, bands, lines, notes, range };
}

async function meterPlot(detail) {
  const c = detail.case;
  const q = c.quantity;
  const pad = Math.max(HOUR, sec(q.until) - sec(q.since));
  let since = sec(q.since) - pad;
  let until = sec(q.until) + pad;
  const inRange = (o) => sec(o.start) < until + 12 * HOUR && sec(o.end) > since - 12 * HOUR;
  for (const o of detail.orders.filter(inRange)) { // the order's window too, within two days
    since = Math.max(Math.min(since, sec(o.start) - HOUR / 2), sec(q.since) - 24 * HOUR);
    until = Math.min(Math.max(until, sec(o.end) + HOUR / 2), sec(q.until) + 24 * HOUR);
  }
  until = Math.max(since + HOUR, Math.min(until, Date.now() / 1000));
  const range = `since=${encodeURIComponent(isoOf(since))}&until=${encodeURIComponent(isoOf(until))}`;
  const meters = await Promise.all(detail.meters.map((id) => api("GET",
    `/api/v1/enterprises/${encodeURIComponent(c.enterprise_id)}/meters/${encodeURIComponent(id)}/series?${range}`)));
  const lists = [];
  const series = [];
  const lines = [];
  const notes = [];
  meters.forEach((m, i) => {
    const color = COLORS[i % COLORS.length];
    const name = m.meter_name || m.meter_id;
    const on = m.rated_kw || m.on_kw || 1; // a state-only sample (运行状态) drawn at the rated power
    lists.push(withGaps(m.samples.map((p) => [sec(p.t), p.p_kw ?? (p.switch_on === null ? null : p.switch_on ? on : 0)])));
    series.push({ label: `${name}（${t(`meter.${m.role}`)}）kW`, stroke: color, width: 2 });
    if (m.on_kw !== null) lines.push({ y: m.on_kw, stroke: color, label: `${name} ${t("chart.on")} ${fmtNum(m.on_kw, "kW")}` });
    if (m.off_kw !== null) lines.push({ y: m.off_kw, stroke: color, label: `${name} ${t("chart.off")} ${fmtNum(m.off_kw, "kW")}` });
    if (m.on_kw !== null && m.off_kw !== null) {
      notes.push(`${name}（${t(`meter.${m.role}`)}）：${t("chart.on")} ≥ ${fmtNum(m.on_kw, "kW")}，${t("chart.off")} ≤ ${fmtNum(m.off_kw, "kW")}`);
    }
  });
  const bands = [];
  for (const o of detail.orders) {
    const fill = "rgba(92, 107, 192, 0.16)";
    if (o.daily) {
      for (const [from, to] of dailyWindows(o, since, until)) bands.push({ from, to, fill });
      notes.push(`${t(`order.${o.kind}`)} ${o.reference}（${t("chart.blue")}）：${fmtTime(o.start)} – ${fmtTime(o.end)}，${t("chart.daily")} ${o.daily}`);
    } else {
      bands.push({ from: sec(o.start), to: sec(o.end), fill });
      notes.push(`${t(`order.${o.kind}`)} ${o.reference}（${t("chart.blue")}）：${fmtTime(o.start)} – ${fmtTime(o.end)}`);
    }
  }
  bands.push(windowBand(c));
  notes.push(windowNote(c));
  const data = columns(lists);
  const windows = [[sec(q.since), sec(q.until)], ...detail.orders.filter(inRange).map((o) => [Math.max(sec(o.start), since), Math.min(sec(o.end), until)])];
  return { title: "case.chart_power", data, series, unit: "kW", bands, lines, notes, range: data[0].length ? extent(data[0], windows) : null };
}

/* A staggered order's daily window (HH:MM-HH:MM, China time; may pass midnight) on each day
   of [since, until) within the order. */
function dailyWindows(o, since, until) {
  const [from, to] = o.daily.split("-").map((x) => { const [h, m] = x.split(":").map(Number); return (h * 60 + m) * 60; });
  const out = [];
  const first = Math.floor((since + 8 * HOUR) / 86400) * 86400 - 8 * HOUR - 86400; // China midnight
  for (let day = first; day < until; day += 86400) {
    const a = Math.max(day + from, sec(o.start));
    const b = Math.min(day + (to > from ? to : to + 86400), sec(o.end));
    if (b > a && b > since && a < until) out.push([a, b]);
  }
  return out;
}

/* Without a series (a source the configuration no longer has): the values in the evidence. */
function trailPlot(detail) {
  const c = detail.case;
  const q = c.quantity;
  const rows = (detail.evidence.trail || []).filter((e) => e.state === "fire" && e.value !== null && e.value !== undefined);
  const lists = [rows.map((e) => [sec(e.window_start), e.value])];
  const series = [{ label: q.name, stroke: COLORS[0], width: 2, points: { show: true, size: 6 } }];
  const notes = [t("case.chart_from_trail")];
  if (q.exceedance && q.limit !== null) {
    lists.push(rows.map((e) => [sec(e.window_start), e.limit ?? q.limit]));
    series.push({ label: q.limit_name, stroke: LIMIT, width: 2, dash: [6, 4] });
  }
  const data = columns(lists);
  const range = data[0].length > 1 ? null : data[0].length ? [data[0][0] - 12 * HOUR, data[0][0] + 12 * HOUR] : null;
  return { title: "case.chart", data, series, unit: c.unit, bands: [windowBand(c)], lines: [], notes, range };
}
