import { api, el, refresh } from "../core.js";
import { industryName, t } from "../i18n.js";

export default async function render() {
  const items = await api("GET", "/api/v1/enterprises");
  const region = document.getElementById("f-region");
  const industry = document.getElementById("f-industry");
  for (const [select, key] of [[region, "region"], [industry, "industry"]]) {
    if (select.options.length === 1) {
      [...new Set(items.map((e) => e[key]).filter(Boolean))].sort()
        .forEach((v) => select.append(el("option", { value: v }, key === "industry" ? industryName(v) : v)));
      select.onchange = () => refresh();
    }
  }
  const shown = items.filter((e) => (!region.value || e.region === region.value)
    && (!industry.value || e.industry === industry.value));
  const by = (s) => shown.filter((e) => e.status === s).length;
  const counts = document.getElementById("counts");
  counts.replaceChildren(
    el("div", { class: "count" }, t("fleet.total"), el("b", {}, shown.length)),
    ...["normal", "warning", "alarm", "offline", "stopped"].map((s) =>
      el("div", { class: `count ${s}`, id: `count-${s}` }, el("span", { class: `badge ${s}` }, t(`status.${s}`)), el("b", {}, by(s)))),
  );
  document.getElementById("fleet").replaceChildren(...shown.map((e) => el("div",
    { class: `card ${e.status}`, id: `ent-${e.id}` },
    el("h4", {}, e.name, " ", el("span", { class: `badge ${e.status}` }, t(`status.${e.status}`))),
    el("div", { class: "meta" }, [e.region, industryName(e.industry), e.positive_list ? t("fleet.positive_list") : ""].filter(Boolean).join(" · ")),
    el("div", { class: "meta" }, `${e.outlets.length} ${t("fleet.outlets")} · ${e.meters.length} ${t("fleet.meters")}`),
    el("div", {}, el("a", { href: `/cases?enterprise_id=${encodeURIComponent(e.id)}` },
      `${t("fleet.open_alarms")} ${e.open_alarms} · ${t("fleet.open_warnings")} ${e.open_warnings}`)),
  )));
}
