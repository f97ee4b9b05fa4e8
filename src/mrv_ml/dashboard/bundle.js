// Bundle mode (`mrv bundle`): the page and its records come together as static files, opened
// from any host or from file://, where fetch() is refused, so the records arrive in
// bundle-data.js as `window.MRV_BUNDLE`: each record's and proof's exact file text, read
// here with the same strict parser as a dropped file. Nothing in the bundle is trusted: the
// manifest's fingerprint is only shown, the page hashes the text itself, and an endpoint the
// bundle suggests is used only once the reader chooses it (the node's chain id is still
// checked against the proof's by decide()).
import { InputError, parseStrict } from "./strictjson.js";
import { formatCo2Kg, formatEnergyKwh } from "./units.js";

const $ = (id) => document.getElementById(id);

function el(tag, text = "", attrs = {}) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** The bundle's entries, each with its record and proof read strictly (or the problem). */
export function readBundle(data) {
  if (!data || typeof data !== "object" || data.format !== "mrv-bundle-1" || !Array.isArray(data.records)) {
    throw new InputError("bad_bundle", "bundle-data.js is not an mrv bundle (format mrv-bundle-1)");
  }
  const encoder = new TextEncoder();
  return data.records.map((r) => {
    const entry = { manifest: r, record: null, proof: null, problem: null };
    try {
      const recordName = String(r.record_file).split("/").pop();
      const proofName = String(r.proof_file).split("/").pop();
      entry.record = { ...parseStrict(encoder.encode(String(r.record_text)), recordName), name: recordName };
      entry.proof = { ...parseStrict(encoder.encode(String(r.proof_text)), proofName), name: proofName };
    } catch (e) {
      entry.problem = e;
    }
    return entry;
  });
}

function suggestion(entries) {
  // One chain's suggested endpoint, if the bundle names one: shown, never used unasked.
  for (const e of entries) {
    const url = e.manifest.suggested_rpc;
    if (typeof url === "string" && /^https?:\/\//.test(url)) return { url, chainId: e.manifest.chain_id };
  }
  return null;
}

/**
 * Lists the bundle's records above the page's cards; `open(entry)` shows one (the record
 * page, verified with its bundled proof). `query` may name one to open at once (`?id=`).
 */
export async function startBundle(data, query, open, useEndpoint) {
  const section = el("section", "", { id: "bundle", class: "card", "aria-labelledby": "bundle-h" });
  section.append(el("h2", "Records in this bundle", { id: "bundle-h" }));
  section.append(el("p", "Each record below is verified in this browser against the chain its proof names: " +
    "give a JSON-RPC endpoint of that chain under Connection (or open this page with ?rpc=URL). " +
    "Nothing else is asked of any server.", { class: "hint" }));
  const problem = el("p", "", { id: "bundle-error", class: "error", role: "alert" });
  problem.hidden = true;
  let entries = [];
  try {
    entries = readBundle(data);
  } catch (e) {
    problem.textContent = e.message;
    problem.hidden = false;
  }
  const suggested = suggestion(entries);
  if (suggested && !query.get("rpc")) {
    const row = el("div", "", { class: "row", id: "bundle-suggestion" });
    row.append(el("span", `The bundle suggests the endpoint ${suggested.url} for chain ${suggested.chainId}. ` +
      "Use it only if you trust it to answer for that chain:"));
    const use = el("button", "Use the suggested endpoint", { type: "button", id: "bundle-use-suggested" });
    use.addEventListener("click", () => useEndpoint(suggested.url));
    row.append(use);
    section.append(row);
  }
  const list = el("ul", "", { id: "bundle-records" });
  for (const entry of entries) {
    const m = entry.manifest;
    const item = el("li", "", { "data-mrv-id": String(m.mrv_id) });
    const ee = entry.record?.value?.energy_emissions || {};
    const name = entry.record?.value?.experiment?.name;
    const label = `${typeof name === "string" ? name : "record"} · ${m.mrv_id} · chain ${m.chain_id}` +
      ` · ${formatEnergyKwh(ee.energy_kwh)}, ${formatCo2Kg(ee.co2_kg)} (as the file says, until verified)`;
    const button = el("button", label, { type: "button", class: "secondary bundle-open" });
    button.addEventListener("click", () => openEntry(entry));
    item.append(button, document.createTextNode(" "),
      el("a", "record", { href: String(m.record_file), download: "" }), document.createTextNode(" · "),
      el("a", "proof", { href: String(m.proof_file), download: "" }));
    list.append(item);
  }
  section.append(list, problem);
  // The explorer reads a store or a registry over HTTP; a bundle has neither.
  if ($("nav-explore")) $("nav-explore").hidden = true;
  // "Verify a record" comes back to this list with the reader's endpoint, not without it.
  if ($("nav-verify") && query.get("rpc")) {
    $("nav-verify").href = `?${new URLSearchParams({ rpc: query.get("rpc") })}`;
  }
  const main = document.querySelector("main");
  main.insertBefore(section, main.firstChild);

  async function openEntry(entry) {
    problem.hidden = true;
    for (const li of list.children) li.classList.toggle("open", li.dataset.mrvId === String(entry.manifest.mrv_id));
    if (entry.problem) {
      problem.textContent = entry.problem.message;
      problem.dataset.key = entry.problem.key || "bad_input";
      problem.hidden = false;
      return;
    }
    await open(entry);
  }
  const wanted = query.get("id");
  const first = wanted ? entries.find((e) => e.manifest.mrv_id === wanted) : entries.length === 1 ? entries[0] : null;
  if (first) await openEntry(first);
  document.body.dataset.bundle = String(entries.length);
}
