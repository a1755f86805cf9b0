/* 统计: a period's figures per region or brigade and in total (alerts.statistics). The period
   defaults to last month, China time. */
import { api, chinaParts, el, fmtTime } from "../core.js";
import { t, tf } from "../i18n.js";

const COLUMNS = ["reminders", "explanations", "non_site_checks", "on_site_checks", "opened", "closed",
  "closure_rate", "mean_hours_to_close", "violations_confirmed", "rectifications_ordered", "struck_off", "recurrences"];

function lastMonth() {
  const p = chinaParts(new Date());
  const [y, m] = [Number(p.year), Number(p.month)];
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, "0")}`;
}

function cell(g, key) {
  if (key === "closure_rate") return g.closure_rate === null ? "—" : `${(g.closure_rate * 100).toFixed(1)}%`;
  if (key === "mean_hours_to_close") return g.mean_hours_to_close === null ? "—" : tf("stat.hours", { n: g.mean_hours_to_close.toFixed(1) });
  if (key === "explanations") return tf("stat.on_time", { n: g.explanations, k: g.explained_on_time });
  return String(g[key]);
}

// The newest question asked (the page's default period as it opens, a person's own, a re-render's):
// a slower answer to an earlier one is dropped, not shown over the later one's.
let asked = 0;

export default async function render() {
  const form = document.getElementById("stat-form");
  if (!form.period.value) form.period.value = lastMonth();
  const show = async () => {
    const error = document.getElementById("stat-error");
    const question = ++asked;
    try {
      const q = `period=${encodeURIComponent(form.period.value.trim())}&by=${form.by.value}`;
      const s = await api("GET", `/api/v1/statistics?${q}`);
      if (question !== asked) return;
      error.textContent = "";
      for (const format of ["pdf", "xlsx"]) {  // the same period's report, as files
        const link = document.getElementById(`stat-${format}`);
        link.href = `/api/v1/statistics/report?${q}&format=${format}`;
        link.download = `report-${s.period}-${s.by}.${format}`;
      }
      document.getElementById("stat-span").textContent = tf("stat.span", { since: fmtTime(s.since), until: fmtTime(s.until) });
      document.getElementById("stat-table").replaceChildren(el("table", { class: "stack stat-table" },
        el("thead", {}, el("tr", {}, el("th", {}, t(`stat.by.${s.by}`)), ...COLUMNS.map((c) => el("th", {}, t(`stat.col.${c}`))))),
        el("tbody", {}, ...s.groups.map((g) => el("tr", { class: g.group === "合计" ? "total" : "" },
          el("td", { "data-label": t(`stat.by.${s.by}`) }, g.group),
          ...COLUMNS.map((c) => el("td", { "data-label": t(`stat.col.${c}`), class: "num" }, cell(g, c))))))));
    } catch (err) {
      if (question !== asked) return;
      error.textContent = err.code === "invalid_request" || err.code === "bad_period" ? t("stat.bad_period") : `${t("err.generic")}：${err.message}`;
    }
  };
  form.onsubmit = (event) => { event.preventDefault(); show(); };
  await show();
}
