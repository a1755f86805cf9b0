import { api, el, fmtTime } from "../core.js";
import { t } from "../i18n.js";

export default async function render() {
  const [orders, page] = await Promise.all([
    api("GET", "/api/v1/work-orders"), api("GET", "/api/v1/cases?limit=500")]);
  const byId = new Map(page.items.map((c) => [c.id, c]));
  document.querySelectorAll("#board .column").forEach((col) => {
    const stage = col.dataset.stage;
    const cards = orders.filter((o) => (stage === "closed" ? ["closed"].includes(o.state) : o.state === stage))
      .map((o) => {
        const c = byId.get(o.case_id);
        return el("div", { class: `card ${c ? c.tier : ""} ${o.overdue ? "late" : ""}`, id: `wo-${o.id}` },
          el("h4", {}, el("a", { href: `/cases/${o.case_id}` }, `#${o.case_id} `), c ? c.enterprise_name : ""),
          c ? el("div", { class: "meta" }, `${c.rule_name}（${c.rule}） · ${t(`kind.${o.kind}`)} · ${o.brigade}`) : "",
          el("div", { class: o.overdue ? "overdue" : "meta" }, `${t("wo.due")} ${fmtTime(o.due_at)}${o.overdue ? " · " + t("wo.overdue") : ""}`));
      });
    col.querySelector(".cards").replaceChildren(...cards);
  });
}
