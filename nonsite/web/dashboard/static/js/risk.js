/* 环保码: a rating's colour, its score, what produced it (each line a kind of item, its count,
   its points and the cases or clues it names), when it would change and its history. Shared by
   the 风险评级 page and the enterprise's own page. Days are China days (the API's). */
import { el } from "./core.js";
import { t, tf } from "./i18n.js";

const num = (v) => Number(v).toLocaleString("zh-CN", { maximumFractionDigits: 2 });

export const colorBadge = (color) => el("span", { class: `badge risk-${color}` }, t(`risk.color.${color}`));

function refLink(ref, linkCases) {
  const [kind, id] = ref.split(":");
  const label = `${t(`risk.ref.${kind}`)}${id}`;
  return kind === "case" && linkCases ? el("a", { href: `/cases/${id}` }, label) : el("span", {}, label);
}

function refs(list, linkCases) {
  const shown = list.slice(0, 12);
  const parts = shown.flatMap((r, i) => (i ? ["、", refLink(r, linkCases)] : [refLink(r, linkCases)]));
  if (list.length > shown.length) parts.push(tf("risk.more", { n: list.length - shown.length }));
  return parts;
}

export function explanation(r, { linkCases = true } = {}) {
  const rows = r.contributions.map((c) => el("tr", {},
    el("td", { "data-label": t("risk.col.kind") }, c.name),
    el("td", { "data-label": t("risk.col.count"), class: "num" }, c.kind === "transmission" ? tf("risk.pct_short", { n: num(c.count) }) : num(c.count)),
    el("td", { "data-label": t("risk.col.each"), class: "num" }, num(c.each)),
    el("td", { "data-label": t("risk.col.points"), class: "num" }, num(c.points)),
    el("td", { "data-label": t("risk.col.refs") }, ...refs(c.refs, linkCases))));
  const total = el("tr", { class: "total" }, el("td", { "data-label": t("risk.col.kind") }, t("risk.total")),
    el("td", {}, ""), el("td", {}, ""), el("td", { "data-label": t("risk.col.points"), class: "num" }, num(r.score)), el("td", {}, ""));
  return el("table", { class: "stack risk-table" },
    el("thead", {}, el("tr", {}, ...["kind", "count", "each", "points", "refs"].map((k) => el("th", {}, t(`risk.col.${k}`))))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5 }, t("risk.nothing")))]), total));
}

export function nextChange(r) {
  const n = r.next_change;
  const lines = [];
  if (n.falls_on) lines.push(tf("risk.falls", { day: n.falls_on, color: t(`risk.color.${n.falls_to}`), n: n.released.length }));
  else if (r.color !== "green") lines.push(t("risk.no_fall"));
  if (n.rise_to) lines.push(tf("risk.rises", { points: num(n.rise_in), color: t(`risk.color.${n.rise_to}`) }));
  return el("ul", { class: "risk-next" }, ...lines.map((l) => el("li", {}, l)));
}

/* The history as the days its colour changed: a year of days in a few lines. */
export function historyList(points) {
  const changes = points.filter((p, i) => i === 0 || p.color !== points[i - 1].color);
  if (!changes.length) return el("p", { class: "empty" }, t("risk.no_history"));
  return el("ol", { class: "risk-history" }, ...changes.reverse().map((p) =>
    el("li", {}, tf("risk.since", { day: p.day }), " ", colorBadge(p.color), ` ${tf("risk.points", { n: num(p.score) })}`)));
}

export function ratingPanel(r, history, options = {}) {
  return el("div", { class: "risk-detail" },
    el("p", { class: "risk-head" }, colorBadge(r.color), ` ${tf("risk.points", { n: num(r.score) })} · ${tf("risk.rated_on", { day: r.day })}`),
    explanation(r, options),
    el("h4", {}, t("risk.when")), nextChange(r),
    history ? el("h4", {}, t("risk.history")) : "", history ? historyList(history) : "");
}
