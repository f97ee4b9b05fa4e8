// The explorer: a list of runs with filters, totals, proportional bars and sorting, over
// `mrv serve`'s local store (/api/explore) or a registry's published records (/v1/explore).
// Both answer {"rows", "totals", "count"}: the filter and the totals are decided there (in
// Python, in SQL), never here; this module only asks and draws. Every field of a row is
// untrusted text and reaches the page through textContent only.
import { MISSING, formatCo2Kg, formatDate, formatDurationS, formatEnergyKwh, formatNumber } from "./units.js";

export const PAGE_SIZE = 100;  // rows drawn at once: 10,000 runs stay one request, one page
const FILTERS = ["experiment", "tag", "since", "until", "status", "anchor_state", "trust"];
const SORTS = ["date", "energy", "co2", "duration", "experiment"];
const ID_RE = /^MRV-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const $ = (id) => document.getElementById(id);

// --- where the runs come from ------------------------------------------------------------

// mrv serve (the page has its /api/config) or a registry (the page is served under
// /explorer/ beside /v1/): one code path, two base URLs.
export async function detectSource(serverConfig) {
  if (serverConfig) return { kind: "store", explore: "/api/explore" };
  try {
    const info = new URL("../v1/info", location.href);
    const r = await fetch(info, { cache: "no-store" });
    if (r.ok) {
      const body = await r.json();
      if (body && body.service === "mrv-ml registry") {
        return { kind: "registry", explore: new URL("../v1/explore", location.href).href,
                 records: new URL("../v1/records/", location.href).href,
                 proofs: new URL("../v1/proofs/", location.href).href, info: body };
      }
    }
  } catch { /* not a registry either: a page opened from a file or a static host */ }
  return null;
}

// The full ID meant by `ref` (an ID, or a unique prefix, "MRV-" optional) in the store.
export async function resolveId(source, ref) {
  const text = String(ref).trim();
  if (ID_RE.test(text)) return text;
  const prefix = /^mrv-/i.test(text) ? `MRV-${text.slice(4).toLowerCase()}` : `MRV-${text.toLowerCase()}`;
  if (!/^MRV-[0-9a-f-]{1,36}$/.test(prefix)) throw new Error(`${text} is not an MRV ID or the start of one (hex digits and dashes)`);
  if (!source || source.kind !== "store") throw new Error(`give the full ID (MRV-<uuid>): ${text} is only the start of one`);
  const r = await fetch(`/api/resolve/${encodeURIComponent(prefix)}`, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `no record matching ${text}`);
  return body.mrv_id;
}

// Where the record page reads a record and its proof.
export function recordUrls(source, id) {
  if (source?.kind === "registry") {
    return { record: source.records + encodeURIComponent(id), proof: `${source.proofs}${encodeURIComponent(id)}`,
             proofField: "proof" };
  }
  return { record: `/api/records/${encodeURIComponent(id)}`, proof: `/api/records/${encodeURIComponent(id)}/proof`,
           proofField: null };
}

// --- the view's state: the URL is the state (deep links) --------------------------------

function readQuery() {
  const q = new URLSearchParams(location.search);
  const filters = {};
  for (const k of FILTERS) if (q.get(k)) filters[k] = q.get(k);
  const sort = SORTS.includes((q.get("sort") || "").replace(/^-/, "")) ? q.get("sort") : "-date";
  const bar = q.get("bar") === "co2" ? "co2" : "energy";
  const page = Math.max(1, Number.parseInt(q.get("page") || "1", 10) || 1);
  return { filters, sort, bar, page };
}

function writeQuery(view) {
  const q = new URLSearchParams({ view: "explore" });
  for (const k of FILTERS) if (view.filters[k]) q.set(k, view.filters[k]);
  if (view.sort !== "-date") q.set("sort", view.sort);
  if (view.bar !== "energy") q.set("bar", view.bar);
  if (view.page > 1) q.set("page", String(view.page));
  const keep = new URLSearchParams(location.search);
  for (const k of ["rpc", "contract"]) if (keep.get(k)) q.set(k, keep.get(k));
  history.replaceState(null, "", `?${q}`);
}

// The API's query: dates of the form become instants (the API takes since <= start < until).
function apiQuery(view) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(view.filters)) {
    q.set(k, (k === "since" || k === "until") && /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
  }
  q.set("sort", view.sort);
  q.set("limit", String(PAGE_SIZE));
  q.set("offset", String((view.page - 1) * PAGE_SIZE));
  return q;
}

// --- drawing ---------------------------------------------------------------------------

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function renderTotals(t, count) {
  const rows = [
    ["Runs", formatNumber(count)],
    ["Energy", formatEnergyKwh(t.energy_kwh)],
    ["CO₂e", formatCo2Kg(t.co2_kg)],
    ["Duration", formatDurationS(t.duration_s)],
  ];
  if (t.not_measured) rows.push(["Not measured", `${formatNumber(t.not_measured)} (not in the sums)`]);
  const box = $("ex-totals");
  box.replaceChildren();
  for (const [k, v] of rows) {
    const cell = el("div", null, "total");
    cell.dataset.total = k;
    cell.append(el("span", k, "total-label"), el("span", v, "total-value"));
    box.append(cell);
  }
}

function anchoring(row) {
  if (row.anchor_state === "anchored") return row.trust ? `anchored · ${row.trust}` : "anchored";
  if (row.anchor_state === "none") return "not anchored";
  return row.anchor_state || MISSING;
}

function recordHref(id) {
  const q = new URLSearchParams({ id });
  const keep = new URLSearchParams(location.search);
  for (const k of ["rpc", "contract"]) if (keep.get(k)) q.set(k, keep.get(k));
  return `?${q}`;
}

function renderRows(rows, bar) {
  const figure = (r) => (bar === "co2" ? r.co2_kg : r.energy_kwh);
  const finite = rows.map(figure).filter((v) => typeof v === "number" && Number.isFinite(v) && v > 0);
  const max = finite.length ? Math.max(...finite) : 0;
  const body = $("ex-rows");
  const frag = document.createDocumentFragment();
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = r.mrv_id;
    tr.dataset.status = r.status || "";
    const name = el("td", null, "ex-name");
    const link = el("a", r.experiment || MISSING);
    link.href = recordHref(r.mrv_id);
    link.className = "ex-open";
    name.append(link, el("span", r.mrv_id, "ex-id"));
    const value = figure(r);
    const barCell = el("td", null, "ex-bar");
    const track = el("span", null, "bar-track");
    const fill = el("span", null, "bar-fill");
    const share = typeof value === "number" && max > 0 ? Math.max(0, Math.min(1, value / max)) : 0;
    fill.style.width = `${(share * 100).toFixed(2)}%`;  // CSSOM, not a style attribute: CSP-clean
    track.append(fill);
    barCell.append(track);
    barCell.setAttribute("aria-hidden", "true");
    tr.append(
      el("td", formatDate(r.start_time), "ex-date"), name,
      el("td", r.status || MISSING, `ex-status st-${/^[a-z]+$/.test(r.status || "") ? r.status : "other"}`),
      el("td", anchoring(r), "ex-anchor"),
      el("td", formatEnergyKwh(r.energy_kwh), "num ex-energy"), el("td", formatCo2Kg(r.co2_kg), "num ex-co2"),
      el("td", formatDurationS(r.duration_s), "num ex-duration"), barCell);
    for (const [i, label] of ["Started", "Run", "Outcome", "Anchoring", "Energy", "CO₂e", "Duration", ""].entries()) {
      tr.children[i].dataset.label = label;
    }
    frag.append(tr);
  }
  body.replaceChildren(frag);
}

function renderPager(view, count) {
  const first = count ? (view.page - 1) * PAGE_SIZE + 1 : 0;
  const last = Math.min(view.page * PAGE_SIZE, count);
  $("ex-range").textContent = count ? `Runs ${formatNumber(first)}–${formatNumber(last)} of ${formatNumber(count)}`
    : "No run matches these filters.";
  $("ex-prev").disabled = view.page <= 1;
  $("ex-next").disabled = last >= count;
}

// --- wiring ----------------------------------------------------------------------------

function fillForm(view) {
  for (const k of FILTERS) $(`ex-${k}`).value = view.filters[k] || "";
  $("ex-sort").value = view.sort.replace(/^-/, "");
  $("ex-desc").checked = view.sort.startsWith("-");
  $("ex-bar-metric").value = view.bar;
}

function formView(page = 1) {
  const filters = {};
  for (const k of FILTERS) {
    const v = $(`ex-${k}`).value.trim();
    if (v) filters[k] = v;
  }
  return { filters, sort: `${$("ex-desc").checked ? "-" : ""}${$("ex-sort").value}`,
           bar: $("ex-bar-metric").value, page };
}

export async function showExplorer(source) {
  document.body.dataset.view = "explore";
  $("explorer").hidden = false;
  const where = $("ex-source");
  if (!source) {
    where.textContent = "The explorer needs `mrv serve` or a registry service behind this page.";
    return;
  }
  where.textContent = source.kind === "registry"
    ? `Published records of the registry at ${source.info.url} (chain ${source.info.chain_id}): every run is anchored, or pending, by its operator.`
    : "Runs of the local store (mrv serve).";
  let view = readQuery();
  let asked = 0;
  const load = async () => {
    const mine = ++asked;  // a slower earlier answer must not overwrite a later one
    writeQuery(view);
    $("ex-error").hidden = true;
    $("explorer").dataset.loading = "1";
    try {
      const r = await fetch(`${source.explore}?${apiQuery(view)}`, { cache: "no-store" });
      const body = await r.json();
      if (mine !== asked) return;
      if (!r.ok) {
        const msg = typeof body.error === "string" ? body.error : body.error?.message || body.detail?.[0]?.msg || `HTTP ${r.status}`;
        throw new Error(msg);
      }
      renderTotals(body.totals, body.count);
      renderRows(body.rows, view.bar);
      renderPager(view, body.count);
      $("explorer").dataset.count = String(body.count);
    } catch (e) {
      if (mine !== asked) return;
      $("ex-error").textContent = `Cannot list the runs: ${e.message || e}`;
      $("ex-error").hidden = false;
    } finally {
      if (mine === asked) delete $("explorer").dataset.loading;
    }
  };
  fillForm(view);
  $("ex-form").addEventListener("submit", (e) => { e.preventDefault(); view = formView(1); load(); });
  $("ex-form").addEventListener("change", () => { view = formView(1); load(); });
  $("ex-reset").addEventListener("click", () => {
    view = { filters: {}, sort: "-date", bar: "energy", page: 1 };
    fillForm(view);
    load();
  });
  $("ex-prev").addEventListener("click", () => { view = { ...view, page: view.page - 1 }; load(); });
  $("ex-next").addEventListener("click", () => { view = { ...view, page: view.page + 1 }; load(); });
  for (const th of document.querySelectorAll("#explorer th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const key = th.dataset.sort;
      const current = view.sort.replace(/^-/, "");
      const sort = current === key ? (view.sort.startsWith("-") ? key : `-${key}`) : (key === "experiment" ? key : `-${key}`);
      view = { ...view, sort, page: 1 };
      fillForm(view);
      load();
    });
  }
  await load();
}
