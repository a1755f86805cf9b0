/* 派单看板: every work order the caller may see, by stage, with its case (enterprise, rule,
   tier) and its brigade by name. */
import { api, brigadeName, el, fmtTime, loadBrigades } from "../core.js";
import { t } from "../i18n.js";

const PAGE = 500; // the cases endpoint's largest page

/* All work orders, page by page (one page holds at most 1,000). */
async function allOrders() {
  const orders = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await api("GET", `/api/v1/work-orders?limit=1000&offset=${offset}`);
    orders.push(...page);
    if (page.length < 1000) return orders;
  }
}

/* The cases the orders belong to: the queue read page by page, newest first, until each is
   found (an old order's case may lie far beyond the first page). */
async function casesOf(orders) {
  const wanted = new Set(orders.map((o) => o.case_id));
  const byId = new Map();
  for (let offset = 0; wanted.size; offset += PAGE) {
    const page = await api("GET", `/api/v1/cases?sort=-id&limit=${PAGE}&offset=${offset}`);
    for (const c of page.items) if (wanted.delete(c.id)) byId.set(c.id, c);
    if (offset + PAGE >= page.total || !page.items.length) break;
  }
  return byId;
}

export default async function render() {
  const [orders, brigades] = await Promise.all([allOrders(), loadBrigades()]);
  const byId = await casesOf(orders);
  document.querySelectorAll("#board .column").forEach((col) => {
    const stage = col.dataset.stage;
    const cards = orders.filter((o) => o.state === stage).map((o) => {
      const c = byId.get(o.case_id);
      const meta = [c ? `${c.rule_name}（${c.rule}）` : "", t(`kind.${o.kind}`), brigadeName(o.brigade, brigades)].filter(Boolean);
      return el("div", { class: `card ${c ? c.tier : ""} ${o.overdue ? "late" : ""}`, id: `wo-${o.id}` },
        el("h4", {}, el("a", { href: `/cases/${o.case_id}` }, `#${o.case_id} `), c ? c.enterprise_name : ""),
        el("div", { class: "meta brigade" }, meta.join(" · ")),
        el("div", { class: o.overdue ? "overdue" : "meta" }, `${t("wo.due")} ${fmtTime(o.due_at)}${o.overdue ? " · " + t("wo.overdue") : ""}`));
    });
    col.querySelector(".cards").replaceChildren(...cards);
  });
}
