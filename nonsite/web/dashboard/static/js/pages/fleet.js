/* 企业总览: every enterprise with its status, what is red now first (the API's order: 报警, 预警,
   离线, 未上线, 停产, 正常; names in pinyin order within each). The count tiles filter by status
   (again, or 全部, shows all); the search box finds an enterprise by name, MN or region. */
import { api, el } from "../core.js";
import { industryName, t } from "../i18n.js";

const STATUSES = ["alarm", "warning", "offline", "never_reported", "stopped", "normal"];
const byName = new Intl.Collator("zh-CN").compare;

let items = [];
let statusFilter = new URLSearchParams(location.search).get("status") || "";

/* Within each status (the API groups them in their order) by name as a Chinese reader sorts. */
function ordered(list) {
  const groups = [];
  for (const e of list) {
    if (!groups.length || groups[groups.length - 1][0].status !== e.status) groups.push([]);
    groups[groups.length - 1].push(e);
  }
  return groups.flatMap((g) => g.sort((a, b) => byName(a.name, b.name)));
}

const matches = (e, needle) => !needle || [
  e.name, e.id, e.region, industryName(e.industry),
  ...e.outlets.flatMap((o) => [o.mn, o.name, o.id]), ...e.meters.flatMap((m) => [m.id, m.name]),
].some((x) => x && String(x).toLowerCase().includes(needle));

function setStatus(status) {
  statusFilter = statusFilter === status ? "" : status;
  const url = new URL(location.href);
  if (statusFilter) url.searchParams.set("status", statusFilter); else url.searchParams.delete("status");
  history.replaceState(null, "", url);
  draw();
}

function sourceName(e, id) {
  const o = e.outlets.find((x) => x.id === id);
  if (o) return `${o.name || o.id}（${o.mn}）`;
  const m = e.meters.find((x) => x.id === id);
  return m ? m.name || m.id : id;
}

function card(e) {
  const silent = e.unreported_sources || [];
  return el("div", { class: `card ${e.status}`, id: `ent-${e.id}` },
    el("h4", {}, e.name, " ", el("span", { class: `badge ${e.status}` }, t(`status.${e.status}`))),
    el("div", { class: "meta" }, [e.region, industryName(e.industry), e.positive_list ? t("fleet.positive_list") : ""].filter(Boolean).join(" · ")),
    el("div", { class: "meta" }, `${e.outlets.length} ${t("fleet.outlets")} · ${e.meters.length} ${t("fleet.meters")}`),
    e.outlets.length ? el("div", { class: "meta outlets" }, ...e.outlets.flatMap((o, i) => [i ? "、" : "",
      el("a", { class: "outlet", href: `/enterprises/${encodeURIComponent(e.id)}/outlets/${encodeURIComponent(o.id)}` }, o.name || o.id)])) : "",
    silent.length ? el("div", { class: "unreported" }, `${t("fleet.unreported")}：${silent.map((id) => sourceName(e, id)).join("、")}`) : "",
    el("div", {}, el("a", { href: `/cases?enterprise_id=${encodeURIComponent(e.id)}` },
      `${t("fleet.open_alarms")} ${e.open_alarms} · ${t("fleet.open_warnings")} ${e.open_warnings}`)),
  );
}

function draw() {
  const region = document.getElementById("f-region").value;
  const industry = document.getElementById("f-industry").value;
  const needle = document.getElementById("f-q").value.trim().toLowerCase();
  const shown = items.filter((e) => (!region || e.region === region)
    && (!industry || e.industry === industry) && matches(e, needle));
  const by = (s) => shown.filter((e) => e.status === s).length;
  const tile = (id, status, label, n) => el("button", {
    type: "button", class: `count ${status}`, id, "aria-pressed": String(statusFilter === status),
    onclick: () => setStatus(status),
  }, label, el("b", {}, n));
  document.getElementById("counts").replaceChildren(
    tile("count-all", "", t("all"), shown.length),
    ...STATUSES.map((s) => tile(`count-${s}`, s, el("span", { class: `badge ${s}` }, t(`status.${s}`)), by(s))),
  );
  const listed = statusFilter ? shown.filter((e) => e.status === statusFilter) : shown;
  document.getElementById("fleet").replaceChildren(...listed.map(card));
  document.getElementById("fleet-empty").hidden = listed.length > 0;
}

export default async function render() {
  items = ordered(await api("GET", "/api/v1/enterprises"));
  const region = document.getElementById("f-region");
  const industry = document.getElementById("f-industry");
  for (const [select, key] of [[region, "region"], [industry, "industry"]]) {
    if (select.options.length === 1) {
      [...new Set(items.map((e) => e[key]).filter(Boolean))].sort(byName)
        .forEach((v) => select.append(el("option", { value: v }, key === "industry" ? industryName(v) : v)));
      select.onchange = () => draw();
    }
  }
  const search = document.getElementById("f-q");
  search.oninput = () => draw();
  search.placeholder = t("fleet.search");
  draw();
}
