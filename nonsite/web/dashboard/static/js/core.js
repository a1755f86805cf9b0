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

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401 && document.body.dataset.page !== "login") {
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
/* A datetime-local input's value (YYYY-MM-DDTHH:MM) read as China time. */
export const chinaInput = (value) => new Date(`${value.length === 16 ? `${value}:00` : value}+08:00`).toISOString();
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
  source.addEventListener("case", () => {
    clearTimeout(pending);
    pending = setTimeout(() => refresh(), 300); // a burst of changes, one refresh
  });
}
