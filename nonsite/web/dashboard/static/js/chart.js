/* A case's chart: the outlet's values and the limit from the series API, or, when the series
   cannot be read, the hour values in the case's evidence. uPlot is vendored (window.uPlot). */
import { api, chinaParts, fmtNum, fmtTime } from "./core.js";
import { t } from "./i18n.js";

function chartFromTrail(detail, host) {
  const rows = (detail.evidence.trail || []).filter((e) => e.value !== null && e.value !== undefined);
  const xs = rows.map((e) => new Date(e.window_start).getTime() / 1000);
  const ys = rows.map((e) => e.value);
  const limit = rows.map((e) => e.limit ?? detail.case.limit);
  return [[xs, ys, limit], [t("case.hourly"), t("case.limit")]];
}

export async function drawChart(detail) {
  const host = document.getElementById("chart");
  const c = detail.case;
  let data; let names; let note = "";
  try {
    const since = new Date(new Date(c.first_seen).getTime() - 24 * 3600e3).toISOString();
    const until = new Date(Math.max(new Date(c.last_seen).getTime() + 6 * 3600e3, Date.now() - 1)).toISOString();
    const s = await api("GET", `/api/v1/enterprises/${encodeURIComponent(c.enterprise_id)}/outlets/${encodeURIComponent(c.source_id)}/series?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until > since ? until : new Date().toISOString())}`);
    [data, names, note] = seriesData(s, c);
  } catch (err) {
    [data, names] = chartFromTrail(detail, host);
    note = t("case.chart_from_trail");
  }
  document.getElementById("chart-note").textContent = note;
  host.replaceChildren();
  if (!window.uPlot || !data[0].length) return;
  const colors = ["#0b5394", "#7aa6d6", "#c62828"];
  const opts = {
    width: host.clientWidth || 900, height: 300,
    // the time axis in China time, 24-hour, whatever the browser's zone
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Asia/Shanghai"),
    series: [{ label: t("case.time"), value: (u, v) => (v == null ? "—" : fmtTime(v * 1e3)) }, ...names.map((n, i) => ({
      label: n, value: (u, v) => fmtNum(v, ""), stroke: colors[i % colors.length], width: i === names.length - 1 ? 2 : 1.5,
      dash: i === names.length - 1 ? [6, 4] : undefined, points: { show: i === 0 },
    }))],
    axes: [{ values: (u, splits) => splits.map((s) => {
      const p = chinaParts(new Date(s * 1e3));
      return p.hour === "00" && p.minute === "00" ? `${p.month}-${p.day}` : `${p.hour}:${p.minute}`;
    }) }, { label: c.unit }],
    // A lone point would stretch the time axis over years: show a day around it instead.
    scales: data[0].length > 1 ? {} : { x: { range: [data[0][0] - 43200, data[0][0] + 43200] } },
  };
  new window.uPlot(opts, data, host);
}

/* The series API's answer as uPlot columns: the valid hourly means (converted to the
   reference O2 where the limit applies to converted values), the raw values, the limit. */
function seriesData(s, c) {
  const factor = c.factor || Object.keys(s.hourly || {})[0];
  const hourly = (s.hourly && s.hourly[factor]) || [];
  const raw = ((s.raw && s.raw[factor]) || []).filter((r) => r.interval !== "hour" && r.interval !== "day");
  const converted = hourly.some((h) => h.converted !== null && h.converted !== undefined);
  const sec = (iso) => new Date(iso).getTime() / 1000;
  const times = [...new Set([...hourly.map((h) => sec(h.t)), ...raw.map((r) => sec(r.t))])].sort((a, b) => a - b);
  const at = (list, key) => {
    const m = new Map(list.map((p) => [sec(p.t), p[key]]));
    return times.map((x) => (m.has(x) ? m.get(x) : null));
  };
  const lim = s.limits && s.limits[factor];
  const limitValue = c.limit ?? (lim ? (lim.hour_alarm ?? lim.day_alarm) : null);
  const marked = (s.marked || []).map((m) => `${fmtTime(m.start)}–${fmtTime(m.end)} ${t(`mark.${m.type}`)}`);
  const note = marked.length ? `${t("case.marked")}: ${marked.join("；")}` : "";
  return [[times, at(hourly, converted ? "converted" : "value"), at(raw, "value"), times.map(() => limitValue)],
    [t("case.hourly"), t("case.raw"), t("case.limit")], note];
}
