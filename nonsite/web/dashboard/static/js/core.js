/* What every page uses: building elements, calling the API, China time, numbers, badges, and
   the live refresh of the current page. */
import { t } from "./i18n.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/* A request's own key (Idempotency-Key): a form sends the same one with every submission,
   so a resend after a lost reply (a database failover, a phone's signal) acts once.
   crypto.getRandomValues, not randomUUID: the latter needs HTTPS, and a brigade's intranet
   may serve plain HTTP. */
export const requestKey = () =>
  "web-" + Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");

export async function api(method, path, body, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (body instanceof FormData) {
    init.body = body; // a file: the browser writes the multipart body and its length
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  // Logged out on purpose (main.js sets leaving): the logout goes to the login page itself;
  // a read that meets the ended session must not start a second navigation.
  if (resp.status === 401 && document.body.dataset.page !== "login" && !document.body.dataset.leaving) {
    location.href = "/login?next=" + encodeURIComponent(location.pathname);
    throw new Error("not logged in");
  }
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = new Error((data && data.message) || resp.statusText);
    err.code = data && data.code; err.status = resp.status;
    throw err;
  }
  return data;
}

/* Times are China time whatever the browser's zone (an officer's phone may be set to any). */
export const CHINA_TIME = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});
export const chinaParts = (d) => Object.fromEntries(CHINA_TIME.formatToParts(d).map((x) => [x.type, x.value]));
export const fmtTime = (iso) => {
  if (!iso) return "—";
  const p = chinaParts(new Date(iso));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
};
/* The same without the year, for dense tables and chart legends: 12-05 02:28. */
export const fmtShort = (iso) => {
  if (!iso) return "—";
  const p = chinaParts(new Date(iso));
  return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
};
/* A datetime-local input's value (YYYY-MM-DDTHH:MM) read as China time. */
export const chinaInput = (value) => new Date(`${value.length === 16 ? `${value}:00` : value}+08:00`).toISOString();
/* An instant as a datetime-local input's value, in China time (the inverse of chinaInput). */
export const chinaLocal = (when) => {
  const p = chinaParts(new Date(when));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
};
/* A time typed as text in China time, 24-hour: "2026-12-05 08:00" (a T for the space will do).
   A datetime-local input shows the browser's own format instead, "12/05/2026, 08:00 AM" in an
   English one; a typed time reads the same in every browser. Null when it is no such time. */
export const TIME_PATTERN = "\\d{4}-\\d{1,2}-\\d{1,2}[ T]\\d{1,2}:\\d{2}";
export function parseChinaTime(text) {
  const m = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})\s*$/.exec(text || "");
  if (!m) return null;
  const [, y, mo, d, h, mi] = m;
  const pad = (x) => x.padStart(2, "0");
  const when = new Date(`${y}-${pad(mo)}-${pad(d)}T${pad(h)}:${mi}:00+08:00`);
  return Number.isNaN(when.getTime()) || fmtTime(when) !== `${y}-${pad(mo)}-${pad(d)} ${pad(h)}:${mi}` ? null : when.toISOString();
}
/* A text field for such a time: its pattern, an example and the words 北京时间. */
export function timeField(id, name, label, value = "", { required = true } = {}) {
  return el("div", { class: "field" }, el("label", { for: id }, label),
    el("input", { id, name, value, required, pattern: TIME_PATTERN, placeholder: "2026-12-05 08:00", autocomplete: "off", class: "when" }),
    el("span", { class: "hint" }, t("time.hint")));
}
/* uPlot's time axis in China time, 24-hour, whatever the browser's zone: its dates, the axis'
   labels (HH:MM, or MM-DD at midnight) and the legend's time (uPlot's defaults are the
   browser's zone, "12am", "12/4/26" and "Time"). Spread into a chart's options. */
export function chinaTimeAxis(label) {
  return {
    tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Asia/Shanghai"),
    xSeries: { label, value: (u, v) => (v == null ? "—" : fmtTime(v * 1e3)) },
    xAxis: {
      space: 60,
      values: (u, splits) => splits.map((s) => {
        const p = chinaParts(new Date(s * 1e3));
        return p.hour === "00" && p.minute === "00" ? `${p.month}-${p.day}` : `${p.hour}:${p.minute}`;
      }),
    },
  };
}
export const fmtNum = (v, unit) => (v === null || v === undefined ? "—" : `${Number(v).toLocaleString("zh-CN", { maximumFractionDigits: 3 })} ${unit || ""}`.trim());
export const tierBadge = (tier) => el("span", { class: `badge ${tier}` }, t(`tier.${tier}`));
export const stateBadge = (state) => el("span", { class: "badge state" }, t(`state.${state}`));
export const isOverdue = (iso) => iso && new Date(iso) < new Date();

/* ---------- the current page, re-rendered on demand and on live events ---------- */
let current = async () => {};
export function setPage(render) { current = render; }
export function refresh() { return current(); }

let pending = null;
export function live() {
  if (!window.EventSource) return;
  const source = new EventSource("/api/v1/events");
  const dot = document.getElementById("live");
  source.onopen = () => dot && dot.classList.add("on");
  source.onerror = () => dot && dot.classList.remove("on");
  source.addEventListener("case", (ev) => {
    let item = null;
    try { item = JSON.parse(ev.data); } catch (err) { /* a refresh is all it asks */ }
    if (item) alarmAlert(item);
    clearTimeout(pending);
    pending = setTimeout(() => refresh(), 300); // a burst of changes, one refresh
  });
}

/* ---------- names the configuration gives (brigades), fetched once per page ---------- */
let brigades = null;
export async function loadBrigades() {
  if (!brigades) brigades = api("GET", "/api/v1/brigades").then((list) => new Map(list.map((b) => [b.id, b.name]))).catch(() => new Map());
  return brigades;
}
/* A brigade by its name (滨江执法大队), its id only when the configuration has no such brigade.
   Call ``await loadBrigades()`` first. */
export const brigadeName = (id, names) => (id ? (names && names.get(id)) || id : "—");

/* ---------- the opt-in alarm sound and desktop notification (the monitor's screen) ----------
   Off until switched on in the header; remembered in this browser. A new 报警 (a case opened,
   reopened or escalated as an alarm, from the live feed) beeps three times (Web Audio, made
   here: no sound file) and shows a desktop notification when the browser allows it. */
const ALERTS_KEY = "nonsite.alerts";
const ALARM_ACTIONS = new Set(["sense", "reopen", "escalate"]);
const alerted = new Set();
let audio = null;
export const alertsOn = () => localStorage.getItem(ALERTS_KEY) === "on";

function audioContext() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  if (!audio) audio = new Ctx();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

function beep() {
  const ctx = audioContext();
  if (!ctx) return;
  [880, 660, 880].forEach((hz, i) => {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    const at = ctx.currentTime + i * 0.28;
    osc.type = "square";
    osc.frequency.value = hz;
    gain.gain.setValueAtTime(0.15, at);
    gain.gain.exponentialRampToValueAtTime(0.001, at + 0.22);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(at);
    osc.stop(at + 0.24);
  });
}

async function alarmAlert(item) {
  if (!alertsOn() || item.tier !== "alarm" || !ALARM_ACTIONS.has(item.action) || alerted.has(item.case_id)) return;
  alerted.add(item.case_id);
  beep();
  if (!window.Notification || Notification.permission !== "granted") return;
  let c = null;
  try { c = (await api("GET", `/api/v1/cases/${item.case_id}`)).case; } catch (err) { /* named by its number only */ }
  const body = c ? `${c.enterprise_name} ${c.source_name || c.source_id} ${c.rule_name}（${c.rule}）` : "";
  const note = new Notification(`${t("alerts.new_alarm")} #${item.case_id}`, { body, tag: `case-${item.case_id}` });
  note.onclick = () => { window.focus(); location.href = `/cases/${item.case_id}`; };
}

/* The header's switch. Switching on is a click: the browser then lets the page play sound
   and ask for the notification permission. */
export function alertToggle() {
  const button = document.getElementById("alert-toggle");
  if (!button) return;
  const show = () => {
    button.setAttribute("aria-pressed", String(alertsOn()));
    button.classList.toggle("on", alertsOn());
  };
  button.onclick = async () => {
    const on = !alertsOn();
    localStorage.setItem(ALERTS_KEY, on ? "on" : "off");
    show();
    if (!on) return;
    audioContext();
    if (window.Notification && Notification.permission === "default") {
      try { await Notification.requestPermission(); } catch (err) { /* sound only */ }
    }
  };
  // After a reload the browser holds sound back until the user touches the page once.
  const wake = () => { if (alertsOn()) audioContext(); };
  document.addEventListener("pointerdown", wake, { once: true });
  document.addEventListener("keydown", wake, { once: true });
  show();
}
