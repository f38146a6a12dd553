/* genoquery variant browser: every number on these pages comes from the JSON API, asked with the
   signed-in token (kept in sessionStorage, sent only as an Authorization header). No libraries,
   no build step; text is inserted as text (never as HTML). */
"use strict";
(() => {
  const TOKEN = "genoquery.token";
  const FLASH = "genoquery.flash";
  const SVGNS = "http://www.w3.org/2000/svg";
  const RSID = /^rs\d+$/i;
  const KEY = /^\S+?[-:_]\d+[-:_][ACGTNacgtn*]+[-:_]\S+$/;
  const REGION = /^[^\s:]+:[\d,]+(-[\d,]+)?$/;
  const GROUPINGS = ["ancestry", "sex_at_birth"];
  const GROUP_LABEL = { ancestry: "Genetic ancestry", sex_at_birth: "Sex at birth" };
  const HELD = "withheld: between 1 and 20 participants (or a number it would reveal)";
  const main = document.getElementById("main");
  const state = { info: null, tier: "public" };

  // ------------------------------------------------------------------ DOM helpers

  function build(doc, ns, tag, attrs, kids) {
    const el = ns ? doc.createElementNS(ns, tag) : doc.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => build(document, null, tag, attrs, kids);
  const s = (tag, attrs, ...kids) => build(document, SVGNS, tag, attrs, kids);
  const enc = (text) => encodeURIComponent(text).replace(/%3A/gi, ":");

  // ------------------------------------------------------------------ formatting

  // A count is a number or null (schema genoquery.api/1); a withheld one is null and named in the
  // `suppressed` list of its row (or of the answer): shown as "≤20", the server's threshold.
  function held(owner, field) {
    return Boolean(owner && owner.suppressed && owner.suppressed.includes(field));
  }
  function fmtCount(owner, field) {
    const v = owner[field];
    if (held(owner, field)) return "≤" + ((state.info && state.info.disclosure.max_suppressed) || 20);
    if (v === null || v === undefined) return "—";
    return v.toLocaleString("en-US");
  }
  function fmtAf(v) {
    if (v === null || v === undefined) return "—";
    if (v === 0) return "0";
    return v.toPrecision(3);
  }
  function countCell(row, field) {
    const withheld = held(row, field);
    return h("td", { class: withheld ? "num held" : "num", "data-count": field,
      "data-value": JSON.stringify(row[field] ?? null), title: withheld ? HELD : null }, fmtCount(row, field));
  }
  function afCell(row, field = "af") {
    const v = row[field];
    return h("td", { class: v === null ? "num held" : "num", "data-af": field, "data-value": JSON.stringify(v ?? null),
      title: v === null ? HELD : null }, fmtAf(v));
  }

  // ------------------------------------------------------------------ the API and the session

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  const token = () => sessionStorage.getItem(TOKEN);

  function signOut(message) {
    sessionStorage.removeItem(TOKEN);
    if (message) sessionStorage.setItem(FLASH, message);
    location.assign("/");
  }

  async function api(path, params, bearer = token()) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    }
    const headers = { Accept: "application/json" };
    if (bearer) headers.Authorization = "Bearer " + bearer;
    const r = await fetch(url, { headers, credentials: "omit", cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch { body = null; }
    if (r.status === 401 && bearer && bearer === token()) {
      signOut("You were signed out: the server no longer accepts your token (it was revoked or is unknown). " +
        "Sign in again with a valid token.");
      throw new ApiError(401, "signed out");
    }
    if (!r.ok) {
      const e = body && body.error;
      const msg = e ? (e.message || e.errorMessage) : null;
      throw new ApiError(r.status, typeof msg === "string" ? msg : `the server answered ${r.status}`);
    }
    return body;
  }

  function flash(message) {
    const box = document.getElementById("flash");
    box.replaceChildren(message ? h("p", {}, message) : "");
    if (!message) box.textContent = "";
  }

  function chrome() {
    const tier = state.tier;
    const signed = Boolean(token());
    for (const li of document.querySelectorAll("#nav [data-tier]")) li.hidden = !li.dataset.tier.split(" ").includes(tier);
    for (const li of document.querySelectorAll("#nav [data-signed]")) li.hidden = (li.dataset.signed === "yes") !== signed;
    document.getElementById("search").hidden = tier === "participant";
    document.getElementById("who").textContent = signed ? `Signed in · ${tier} tier` : "Not signed in · public tier";
    document.body.dataset.tier = tier;
    document.getElementById("signout").addEventListener("click", () => signOut("You are signed out."));
  }

  // ------------------------------------------------------------------ page scaffolding

  function page(title, ...kids) {
    document.title = `${title} · genoquery`;
    main.replaceChildren(h("h1", {}, title), ...kids);
    return main;
  }
  function errorBox(e, what) {
    if (e.status === 404 || (e.status === 400 && what)) {
      return h("div", { class: "error", role: "alert" }, h("p", {}, h("strong", {}, `No match for “${what}”.`)),
        h("p", {}, e.message), h("p", {}, "Try a gene name (GQA1), an rsID (rs123), a variant key " +
          "(chr20-1030-A-C, 20:1030:A:C) or a region (chr20:1-50000)."));
    }
    if (e.status === 403 && state.tier === "participant") {
      return h("div", { class: "error", role: "alert" }, h("p", {}, "A participant token sees only its own data. "),
        h("p", {}, h("a", { href: "/me" }, "See my variants")));
    }
    if (e.status === 401 || e.status === 403) {
      return h("div", { class: "error", role: "alert" }, h("p", {}, e.message), h("p", {}, h("a", { href: "/signin" }, "Sign in")));
    }
    return h("div", { class: "error", role: "alert" }, h("p", {}, e.message));
  }

  // ------------------------------------------------------------------ search box

  function target(text) {
    const q = text.trim();
    if (!q) return null;
    if (RSID.test(q) || KEY.test(q)) return "/variant/" + enc(q);
    const contigs = (state.info && state.info.contigs) || [];
    const bare = (c) => c.replace(/^chr/i, "").toLowerCase();
    if (REGION.test(q) || contigs.some((c) => bare(c) === bare(q))) return "/region/" + enc(q.replace(/,/g, ""));
    return "/gene/" + enc(q);
  }

  function wireSearch() {
    const form = document.getElementById("search");
    const input = document.getElementById("q");
    const list = document.getElementById("q-list");
    let options = [], active = -1, timer = null, asked = 0;
    const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); active = -1; };
    const go = (href) => { close(); location.assign(href); };
    const mark = (i) => {
      active = i;
      options.forEach((o, j) => o.el.setAttribute("aria-selected", String(j === i)));
      if (i >= 0) { input.setAttribute("aria-activedescendant", options[i].el.id); options[i].el.scrollIntoView({ block: "nearest" }); }
    };
    async function refresh() {
      const q = input.value.trim();
      const n = ++asked;
      if (q.length < 2 || KEY.test(q) || REGION.test(q)) return close();
      let found;
      try { found = await api("/api/v1/suggest", { q, limit: 10 }); } catch { return close(); }
      if (n !== asked) return;
      options = found.items.map((item, i) => {
        const href = item.kind === "gene" ? "/gene/" + enc(item.label) : "/variant/" + enc(item.label);
        const el = h("li", { id: `q-opt-${i}`, role: "option", "aria-selected": "false", "data-href": href,
          onmousedown: (ev) => { ev.preventDefault(); go(href); } },
          h("span", {}, item.label), h("small", {}, item.kind === "gene" ? `gene · ${item.region}` : "rsID"));
        return { el, href };
      });
      list.replaceChildren(...options.map((o) => o.el));
      if (!options.length) return close();
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      mark(-1);
    }
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 120); });
    input.addEventListener("keydown", (ev) => {
      if (list.hidden) return;
      if (ev.key === "ArrowDown") { ev.preventDefault(); mark((active + 1) % options.length); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); mark(active <= 0 ? options.length - 1 : active - 1); }
      else if (ev.key === "Escape") { close(); }
      else if (ev.key === "Enter" && active >= 0) { ev.preventDefault(); go(options[active].href); }
    });
    input.addEventListener("blur", () => setTimeout(close, 150));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const href = target(input.value);
      if (href) go(href);
      else input.focus();
    });
  }

  // ------------------------------------------------------------------ charts (hand-drawn SVG)

  function barChart(title, bars) {
    // bars: [{label, value (AF or null)}]; withheld values drawn as short grey bars
    const W = 440, left = 110, right = 56, bar = 22, gap = 8, top = 8;
    const H = top + bars.length * (bar + gap) + 24;
    const max = Math.max(1e-9, ...bars.map((b) => b.value || 0));
    const x = (v) => left + (W - left - right) * (v / max);
    const svg = s("svg", { class: "chart bars", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    svg.append(s("title", {}, title));
    bars.forEach((b, i) => {
      const y = top + i * (bar + gap);
      svg.append(s("text", { x: left - 6, y: y + bar * 0.7, "text-anchor": "end" }, b.label));
      if (b.value === null || b.value === undefined) {
        svg.append(s("rect", { class: "bar held", x: left, y, width: 6, height: bar }));
        svg.append(s("text", { x: left + 12, y: y + bar * 0.7 }, "withheld (≤20)"));
      } else {
        svg.append(s("rect", { class: "bar", x: left, y, width: Math.max(1, x(b.value) - left), height: bar }));
        svg.append(s("text", { x: x(b.value) + 6, y: y + bar * 0.7 }, fmtAf(b.value)));
      }
    });
    const base = top + bars.length * (bar + gap);
    svg.append(s("line", { class: "axis", x1: left, x2: left, y1: top - 4, y2: base }));
    svg.append(s("text", { x: left, y: base + 16 }, "0"));
    svg.append(s("text", { x: W - right, y: base + 16, "text-anchor": "end" }, `AF ${fmtAf(max)}`));
    return h("figure", {}, svg, h("figcaption", {}, title));
  }

  function scatter(title, rows, from, to) {
    // position against AF on a log scale; AF withheld or 0 drawn in a band below the axis
    const W = 800, H = 280, L = 60, R = 16, T = 12, B = 56;
    const afs = rows.map((r) => r.af).filter((v) => typeof v === "number" && v > 0);
    const lo = Math.min(-2, Math.floor(Math.log10(Math.min(1, ...afs))));
    const x0 = from ?? Math.min(...rows.map((r) => r.pos)), x1 = Math.max(to ?? Math.max(...rows.map((r) => r.pos)), x0 + 1);
    const x = (p) => L + (W - L - R) * ((p - x0) / (x1 - x0));
    const y = (af) => T + (H - T - B) * (-Math.log10(af) / -lo);
    const band = H - B + 22;
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    svg.append(s("title", {}, title));
    for (let e = 0; e >= lo; e--) {
      svg.append(s("line", { class: "grid", x1: L, x2: W - R, y1: y(10 ** e), y2: y(10 ** e) }));
      svg.append(s("text", { x: L - 6, y: y(10 ** e) + 4, "text-anchor": "end" }, e === 0 ? "1" : `1e${e}`));
    }
    svg.append(s("text", { x: L - 6, y: band + 4, "text-anchor": "end" }, "≤20"));
    svg.append(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    svg.append(s("text", { x: L, y: H - 4 }, x0.toLocaleString("en-US")));
    svg.append(s("text", { x: W - R, y: H - 4, "text-anchor": "end" }, x1.toLocaleString("en-US")));
    svg.append(s("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, `position on ${rows[0] ? rows[0].contig : ""}`));
    for (const r of rows) {
      const ok = typeof r.af === "number" && r.af > 0;
      const cls = ok ? (r.filter === "PASS" || r.filter === null ? "dot" : "dot fail") : "dot held";
      svg.append(s("circle", { class: cls, cx: x(r.pos), cy: ok ? y(r.af) : band, r: 3.5 },
        s("title", {}, `${r.variant_key}: AF ${fmtAf(r.af)}`)));
    }
    return h("figure", {}, svg, h("figcaption", {}, title + " Orange: FILTER not PASS; grey: AF withheld or 0."));
  }

  // ------------------------------------------------------------------ sortable, paged table

  function table(caption, columns, rows, pageSize = 25) {
    let order = null, dir = 1, pageNo = 0;
    const tbody = h("tbody");
    const status = h("span", { "aria-live": "polite" });
    const prev = h("button", { type: "button", onclick: () => { pageNo--; draw(); } }, "Previous");
    const next = h("button", { type: "button", onclick: () => { pageNo++; draw(); } }, "Next");
    const heads = columns.map((c) => {
      const th = h("th", { scope: "col", class: c.num ? "num" : null });
      if (c.sort) th.append(h("button", { type: "button", onclick: () => sortBy(c, th) }, c.label));
      else th.append(c.label);
      return th;
    });
    function sortBy(c, th) {
      dir = order === c ? -dir : 1;
      order = c;
      heads.forEach((x) => x.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      rows = [...rows].sort((a, b) => {
        const va = c.sort(a), vb = c.sort(b);
        return (va < vb ? -1 : va > vb ? 1 : 0) * dir;
      });
      pageNo = 0;
      draw();
    }
    function draw() {
      const pages = Math.max(1, Math.ceil(rows.length / pageSize));
      pageNo = Math.min(Math.max(0, pageNo), pages - 1);
      const shown = rows.slice(pageNo * pageSize, (pageNo + 1) * pageSize);
      tbody.replaceChildren(...shown.map((r) => h("tr", {}, columns.map((c) => c.cell(r)))));
      if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: columns.length }, "No variants.")));
      status.textContent = `Page ${pageNo + 1} of ${pages} (${rows.length.toLocaleString("en-US")} rows)`;
      prev.disabled = pageNo === 0;
      next.disabled = pageNo >= pages - 1;
    }
    draw();
    return h("div", { class: "sortable" },
      h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, caption), h("thead", {}, h("tr", {}, heads)), tbody)),
      h("div", { class: "pager", role: "group", "aria-label": "Pages" }, prev, status, next));
  }

  const text = (v) => h("td", {}, v ?? "—");
  const variantLink = (r) => h("td", {}, h("a", { href: "/variant/" + enc(r.variant_key) }, r.variant_key));
  const sortAf = (r) => (typeof r.af === "number" ? r.af : -1);
  const sortCount = (f) => (r) => (typeof r[f] === "number" ? r[f] : -1);
  const COUNT_COLUMNS = [
    ["ac", "AC"], ["an", "AN"], ["n_hom_alt", "Hom"], ["n_het", "Het"], ["n_hemi", "Hemi"],
  ].map(([f, label]) => ({ label, num: true, sort: sortCount(f), cell: (r) => countCell(r, f) }));
  const VARIANT_COLUMNS = [
    { label: "Variant", sort: (r) => r.pos, cell: variantLink },
    { label: "Position", num: true, sort: (r) => r.pos, cell: (r) => h("td", { class: "num" }, r.pos.toLocaleString("en-US")) },
    { label: "Alleles", sort: (r) => `${r.ref}>${r.alt}`, cell: (r) => text(`${r.ref} > ${r.alt}`) },
    { label: "rsID", sort: (r) => r.id || "", cell: (r) => text(r.id) },
    { label: "Filter", sort: (r) => r.filter || "", cell: (r) => text(r.filter) },
    { label: "AF", num: true, sort: sortAf, cell: (r) => afCell(r) },
    ...COUNT_COLUMNS,
  ];

  // ------------------------------------------------------------------ pages

  async function home() {
    const info = state.info;
    page("Variant browser",
      h("p", { class: "lede" }, "Look up a gene, an rsID, a variant or a region: allele frequencies overall, " +
        "by genetic ancestry and by sex at birth, as the API releases them to your access tier."));
    if (!info) return;
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Participants"), h("dd", { "data-count": "samples", "data-value": JSON.stringify(info.samples) }, fmtCount(info, "samples")),
      h("dt", {}, "Variants"), h("dd", {}, info.variants.toLocaleString("en-US")),
      h("dt", {}, "Sites"), h("dd", {}, info.sites.toLocaleString("en-US")),
      h("dt", {}, "Contigs"), h("dd", {}, info.contigs.join(", ")),
      h("dt", {}, "Your tier"), h("dd", {}, info.tier),
      h("dt", {}, "Answers about rare alleles left"), h("dd", {}, info.budget_remaining ?? "unlimited"));
    const tryList = h("ul", { id: "examples" });
    const cards = h("div", { class: "cards" },
      h("section", { class: "card" }, h("h2", {}, "This store"), facts),
      h("section", { class: "card" }, h("h2", {}, "Try"), tryList),
      h("section", { class: "card" }, h("h2", {}, "What you see"), h("p", {}, {
        public: "Public tier: whole-store counts, 1–20 shown as ≤20, the rest rounded to 10. Sign in for more.",
        registered: "Registered tier: as public, plus cohort frequencies for cohorts you define.",
        controlled: "Controlled tier: exact counts and links to carriers and genotypes.",
        participant: "Participant: your own variants and how common they are.",
      }[info.tier])));
    main.append(cards);
    if (state.tier === "participant") {
      tryList.append(h("li", {}, h("a", { href: "/me" }, "My variants")));
      return;
    }
    const [genes, rsids] = await Promise.all([api("/api/v1/suggest", { q: "", limit: 3 }), api("/api/v1/suggest", { q: "rs", limit: 3 })]);
    for (const g of genes.items) tryList.append(h("li", {}, "Gene ", h("a", { href: "/gene/" + enc(g.label) }, g.label)));
    for (const r of rsids.items) tryList.append(h("li", {}, "rsID ", h("a", { href: "/variant/" + enc(r.label) }, r.label)));
    const region = genes.items.length ? genes.items[0].region : `${info.contigs[0]}:1-100000`;
    tryList.append(h("li", {}, "Region ", h("a", { href: "/region/" + enc(region) }, region)));
  }

  function search() {
    const q = new URLSearchParams(location.search).get("q") || "";
    const href = target(q);
    if (href) { location.replace(href); return; }
    page("Search", h("p", {}, "Type a gene name, an rsID, a variant key or a region in the search box."));
  }

  async function variant(text) {
    page(text, h("p", { class: "loading" }, "Loading…"));
    let answer;
    try {
      answer = await api("/api/v1/variants/" + encodeURIComponent(text));
    } catch (e) {
      return page(text, errorBox(e, text));
    }
    const groupings = GROUPINGS.filter((g) => ((state.info && state.info.groupings) || []).includes(g));
    const groups = await Promise.all(groupings.map((by) =>
      api("/api/v1/variants/" + encodeURIComponent(text), { by }).then((p) => [by, p.items], (e) => [by, e])));
    const sections = await Promise.all(answer.items.map((row) => variantSection(row, groups, answer.items.length > 1)));
    page(answer.items.length === 1 ? answer.items[0].variant_key : `${text}: ${answer.items.length} alleles`, ...sections);
  }

  async function variantSection(row, groups, several) {
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Key"), h("dd", { "data-field": "variant_key" }, row.variant_key),
      h("dt", {}, "rsID"), h("dd", { "data-field": "id" }, row.id ?? "—"),
      h("dt", {}, "Position"), h("dd", {}, `${row.contig}:${row.pos.toLocaleString("en-US")}`),
      h("dt", {}, "Alleles"), h("dd", { "data-field": "alleles" }, `${row.ref} > ${row.alt}`),
      h("dt", {}, "Filter"), h("dd", { "data-field": "filter" }, row.filter ?? "—"),
      h("dt", {}, "Quality"), h("dd", { "data-field": "qual", "data-value": JSON.stringify(row.qual) }, row.qual === null ? "—" : row.qual.toFixed(1)),
      h("dt", {}, "Nearby"), h("dd", {}, h("a", { href: "/region/" + enc(`${row.contig}:${Math.max(1, row.pos - 5000)}-${row.pos + 5000}`) },
        "variants within 5 kb")));
    const lines = [{ group: "All participants", by: null, row }];
    const notes = [];
    for (const [by, items] of groups) {
      if (items instanceof Error) { notes.push(h("p", { class: "notice" }, `${GROUP_LABEL[by]}: ${items.message}`)); continue; }
      for (const g of items.filter((i) => i.variant_key === row.variant_key)) lines.push({ group: `${GROUP_LABEL[by]}: ${g[by]}`, by, row: g });
    }
    const tbl = h("table", { "data-variant": row.variant_key },
      h("caption", {}, "Allele count (AC), allele number (AN), frequency (AF) and genotype counts"),
      h("thead", {}, h("tr", {}, ["Group", "AC", "AN", "AF", "Hom alt", "Het", "Hemi", "No call"].map((l, i) =>
        h("th", { scope: "col", class: i ? "num" : null }, l)))),
      h("tbody", {}, lines.map((l) => h("tr", { "data-group": l.by ? `${l.by}=${l.row[l.by]}` : "all" },
        h("th", { scope: "row" }, l.group), countCell(l.row, "ac"), countCell(l.row, "an"), afCell(l.row),
        countCell(l.row, "n_hom_alt"), countCell(l.row, "n_het"), countCell(l.row, "n_hemi"), countCell(l.row, "n_missing")))));
    const chart = barChart(`Allele frequency of ${row.variant_key} by group`, lines.map((l) => ({ label: l.group.replace(/^.*: /, ""), value: l.row.af })));
    const section = h("section", { "aria-label": row.variant_key, "data-variant": row.variant_key },
      several ? h("h2", {}, row.variant_key) : null, facts,
      h("h2", {}, "Frequencies"), h("div", { class: "table-wrap" }, tbl), notes,
      h("p", { class: "lede" }, row.suppressed.length ? `Withheld by disclosure control: ${row.suppressed.join(", ")}.` : ""),
      chart, h("h2", {}, "Beacon"), await beaconAnswer(row));
    if (state.tier === "controlled") section.append(individual(row));
    return section;
  }

  async function beaconAnswer(row) {
    if (!/^[ACGTN]+$/.test(row.ref) || !/^[ACGTN]+$/.test(row.alt)) {
      return h("p", {}, "A Beacon query takes only A, C, G, T and N bases; this allele is symbolic.");
    }
    const params = { referenceName: row.contig, start: row.pos - 1, referenceBases: row.ref, alternateBases: row.alt, requestedGranularity: "count" };
    try {
      const b = await api("/beacon/v2/g_variants", params);
      const sum = b.responseSummary;
      return h("div", { "data-beacon": row.variant_key },
        h("p", {}, "GA4GH Beacon v2 answers: ", h("strong", { "data-field": "exists" }, sum.exists ? "exists" : "does not exist"),
          sum.numTotalResults === undefined ? "" : [" (", h("span", { "data-field": "numTotalResults" }, String(sum.numTotalResults)), " matching variant record(s))"]),
        h("p", {}, h("code", {}, `GET /beacon/v2/g_variants?${new URLSearchParams(params)}`)));
    } catch (e) {
      return h("p", {}, `Beacon: ${e.message}`);
    }
  }

  function individual(row) {
    const region = `${row.contig}:${row.pos}-${row.pos}`;
    const carriersPath = `/api/v1/carriers?variant=${enc(row.variant_key)}`;
    const genotypesPath = `/api/v1/genotypes?region=${enc(region)}&limit=1`;
    const out = h("div", {});
    const show = async () => {
      button.disabled = true;
      try {
        const c = await api("/api/v1/carriers", { variant: row.variant_key, limit: 1000 });
        out.replaceChildren(table(`${c.total} carrier(s) of ${row.variant_key}` + (c.total > c.items.length ? ` (first ${c.items.length})` : ""), [
          { label: "Sample", sort: (r) => r.sample_id, cell: (r) => text(r.sample_id) },
          { label: "Zygosity", sort: (r) => r.zygosity, cell: (r) => text(r.zygosity) },
          { label: "GT", sort: (r) => r.gt, cell: (r) => text(r.gt) },
        ], c.items));
      } catch (e) { out.replaceChildren(errorBox(e)); }
    };
    const button = h("button", { type: "button", onclick: show }, "Show carriers");
    return h("section", { class: "card" }, h("h2", {}, "Individual-level data (controlled tier)"),
      h("p", {}, "Carriers: ", h("code", {}, `GET ${carriersPath}`)),
      h("p", {}, "Genotypes: ", h("code", {}, `GET ${genotypesPath}`)),
      h("p", {}, "Send your token as ", h("code", {}, "Authorization: Bearer …"), "; see ", h("a", { href: "/docs#/individual-level" }, "the API docs"), "."),
      button, out);
  }

  async function listing(kind, name) {
    const q = new URLSearchParams(location.search);
    const filters = { af_min: q.get("af_min"), af_max: q.get("af_max"), pass_only: q.get("pass") ? "true" : null, type: q.get("type") };
    const offset = Number(q.get("offset") || 0);
    const title = kind === "gene" ? `Gene ${name}` : `Region ${name}`;
    page(title, h("p", { class: "loading" }, "Loading…"));
    let answer;
    try {
      answer = await api("/api/v1/variants", { [kind]: name, ...filters, offset, limit: 1000 });
    } catch (e) {
      return page(title, errorBox(e, name));
    }
    let span = null;
    if (kind === "gene") {
      const found = await api("/api/v1/suggest", { q: name, limit: 20 }).catch(() => ({ items: [] }));
      const gene = found.items.find((g) => g.kind === "gene" && g.label.toUpperCase() === name.toUpperCase());
      if (gene) span = gene.region;
    } else {
      span = name;
    }
    const bounds = span && /:(\d+)-(\d+)$/.exec(span);
    const rows = answer.items;
    const form = h("form", { class: "filters", method: "get", action: location.pathname, "aria-label": "Filters" },
      h("div", {}, h("label", { for: "af_min" }, "AF at least"), h("input", { id: "af_min", name: "af_min", type: "number", min: 0, max: 1, step: "any", value: filters.af_min })),
      h("div", {}, h("label", { for: "af_max" }, "AF at most"), h("input", { id: "af_max", name: "af_max", type: "number", min: 0, max: 1, step: "any", value: filters.af_max })),
      h("div", {}, h("label", { for: "type" }, "Variant type"), h("select", { id: "type", name: "type" },
        [["", "any"], ["snv", "SNV"], ["indel", "indel"], ["other", "other"]].map(([v, l]) => h("option", { value: v, selected: filters.type === v || (!filters.type && !v) }, l)))),
      h("div", { class: "check" }, h("input", { id: "pass", name: "pass", type: "checkbox", value: "1", checked: Boolean(filters.pass_only) }), h("label", { for: "pass" }, "PASS only")),
      h("button", { type: "submit" }, "Apply filters"));
    const more = h("p", { class: "pager" });
    const link = (o, label) => { const p = new URLSearchParams(location.search); p.set("offset", o); return h("a", { href: `${location.pathname}?${p}` }, label); };
    if (offset > 0) more.append(link(Math.max(0, offset - 1000), "Previous 1,000 variants"));
    if (answer.next_offset !== null) more.append(link(answer.next_offset, "Next 1,000 variants"));
    const summary = h("p", { "data-field": "total", "data-value": String(answer.total) },
      `${answer.total.toLocaleString("en-US")} variant(s)` + (span && kind === "gene" ? ` in ${span}` : "") +
      (answer.total > rows.length ? `; showing ${offset + 1}–${offset + rows.length}` : "") + ".");
    page(title, summary, form,
      rows.length ? scatter(`Allele frequency (log scale) along ${span || name}.`, rows, bounds ? Number(bounds[1]) : null, bounds ? Number(bounds[2]) : null) : null,
      table("Variants: choose a column heading to sort", VARIANT_COLUMNS, rows), more);
  }

  // ------------------------------------------------------------------ cohort builder (registered tier and above)

  const OPERATORS = {
    text: [["=", "is"], ["<>", "is not"]],
    number: [["=", "="], ["<>", "≠"], ["<", "<"], ["<=", "≤"], [">", ">"], [">=", "≥"]],
    date: [["=", "on"], ["<", "before"], [">", "after"]],
    "yes/no": [["IS TRUE", "is yes"], ["IS FALSE", "is no"]],
  };
  const ident = (name) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`);
  const literal = (type, v) => (type === "number" ? String(Number(v)) : `'${String(v).replace(/'/g, "''")}'`);

  async function cohort() {
    if (!["registered", "controlled"].includes(state.tier)) {
      return page("Cohort frequencies", h("p", {}, "Cohort frequencies need a registered or controlled token. ",
        h("a", { href: "/signin" }, "Sign in")));
    }
    let columns;
    try { columns = (await api("/api/v1/person-columns")).items.filter((c) => OPERATORS[c.type]); } catch (e) {
      return page("Cohort frequencies", errorBox(e));
    }
    if (!columns.length) {
      return page("Cohort frequencies", h("p", {}, "This store has no person table to build cohorts from " +
        "(import one with genoquery phenotypes)."));
    }
    const list = h("ul", { class: "conditions" });
    const expr = h("output", { class: "expr", id: "expr", "aria-live": "polite" });
    const results = h("div", { id: "results" });
    let n = 0;
    const expression = () => [...list.children].map((li) => {
      const col = columns.find((c) => c.name === li.querySelector(".col").value);
      const op = li.querySelector(".op").value;
      const val = li.querySelector(".val");
      if (col.type === "yes/no") return `${ident(col.name)} ${op}`;
      if (!val.value.trim()) return null;
      return `${ident(col.name)} ${op} ${literal(col.type, val.value.trim())}`;
    }).filter(Boolean).join(" AND ");
    const update = () => { expr.textContent = expression() || "(every participant)"; };
    function condition() {
      const i = n++;
      const colSel = h("select", { class: "col", id: `col-${i}` }, columns.map((c) => h("option", { value: c.name }, c.name)));
      const opSel = h("select", { class: "op", id: `op-${i}` });
      const valBox = h("span");
      const li = h("li", {},
        h("div", { class: "field" }, h("label", { for: `col-${i}` }, "Column"), colSel),
        h("div", { class: "field" }, h("label", { for: `op-${i}` }, "Condition"), opSel),
        valBox,
        h("button", { type: "button", onclick: () => { li.remove(); update(); } }, "Remove"));
      const retype = () => {
        const col = columns.find((c) => c.name === colSel.value);
        opSel.replaceChildren(...OPERATORS[col.type].map(([v, l]) => h("option", { value: v }, l)));
        valBox.replaceChildren(col.type === "yes/no" ? "" : h("div", { class: "field" }, h("label", { for: `val-${i}` }, "Value"),
          h("input", { class: "val", id: `val-${i}`, type: col.type === "number" ? "number" : col.type === "date" ? "date" : "text", step: "any" })));
        if (col.type === "yes/no") valBox.append(h("input", { class: "val", type: "hidden", value: "" }));
        update();
      };
      colSel.addEventListener("change", retype);
      li.addEventListener("input", update);
      li.addEventListener("change", update);
      list.append(li);
      retype();
      colSel.focus();
    }
    const where = h("input", { id: "where", required: true, placeholder: "GQA1 or chr20:1-50000" });
    async function run(ev) {
      ev.preventDefault();
      const place = where.value.trim();
      let region = place;
      if (!REGION.test(place) && !(state.info.contigs || []).includes(place)) {
        const found = await api("/api/v1/suggest", { q: place, limit: 20 }).catch(() => ({ items: [] }));
        const gene = found.items.find((g) => g.kind === "gene" && g.label.toUpperCase() === place.toUpperCase());
        if (!gene) { results.replaceChildren(errorBox(new ApiError(404, `no gene or region named ${place}`), place)); return; }
        region = gene.region;
      }
      const cohortText = expression();
      results.replaceChildren(h("p", { class: "loading" }, "Counting…"));
      try {
        const a = await api("/api/v1/frequencies", { region, cohort: cohortText || null, limit: 1000 });
        results.replaceChildren(
          h("p", { "data-field": "cohort_size" }, "Cohort: ", h("strong", { "data-count": "cohort_size", "data-value": JSON.stringify(a.cohort_size) }, fmtCount(a, "cohort_size")),
            ` participants${state.tier === "registered" ? " (rounded)" : ""}; ${a.total.toLocaleString("en-US")} variant(s) in ${region}.`),
          a.items.length ? scatter(`Allele frequency in the cohort along ${region} (log scale).`, a.items, null, null) : null,
          table("Variants in the cohort: choose a column heading to sort", VARIANT_COLUMNS, a.items));
      } catch (e) {
        results.replaceChildren(errorBox(e));
      }
    }
    page("Cohort frequencies",
      h("p", { class: "lede" }, "Build a cohort from the person table, then see allele frequencies in it for a gene or region. " +
        "Cohorts smaller than the disclosure minimum, or too close to one you asked about before, are refused."),
      h("form", { id: "cohort-form", onsubmit: run },
        h("fieldset", {}, h("legend", {}, "Who is in the cohort (all conditions must hold)"), list,
          h("button", { type: "button", id: "add", onclick: condition }, "Add condition")),
        h("p", {}, "Filter expression sent to the API:"), expr,
        h("div", { class: "field" }, h("label", { for: "where" }, "Gene or region"), where),
        h("p", {}, h("button", { type: "submit", class: "primary" }, "Show frequencies"))),
      results);
    update();
  }

  // ------------------------------------------------------------------ participant view

  async function me() {
    if (state.tier !== "participant") {
      return page("My variants", h("p", {}, "This page is for participants: sign in with your participant token. ",
        h("a", { href: "/signin" }, "Sign in")));
    }
    page("My variants", h("p", { class: "loading" }, "Loading…"));
    let rows = [], first;
    try {
      for (let offset = 0; offset < 5000; offset += 1000) {
        const p = await api("/api/v1/me", { offset, limit: 1000 });
        first = first || p;
        rows = rows.concat(p.items);
        if (p.next_offset === null) break;
      }
    } catch (e) {
      return page("My variants", errorBox(e));
    }
    rows.sort((a, b) => sortAf(a) - sortAf(b) || a.variant_key.localeCompare(b.variant_key));
    const group = rows.find((r) => r.ancestry)?.ancestry;
    const copies = (r) => (r.allele_copies === 1 ? (r.zygosity === "hemi" ? "one copy (one X)" : "one copy") : `${r.allele_copies} copies`);
    const oneIn = (af) => (typeof af === "number" && af > 0 ? `about 1 in ${Math.round(1 / af).toLocaleString("en-US")} copies` : "");
    page("My variants",
      h("p", { "data-field": "sample_id" }, `Participant ${first.sample_id}: ${first.total.toLocaleString("en-US")} variant(s) where you carry a non-reference allele, rarest first.`),
      h("section", { class: "help", "aria-label": "How to read this page" },
        h("h2", {}, "How to read this page"),
        h("ul", {},
          h("li", {}, "Everyone carries thousands of variants; most are common and harmless. A variant listed here is not a diagnosis."),
          h("li", {}, "“Your copies” is how many copies of the variant you carry: one (from one parent) or two (from both)."),
          h("li", {}, "“Frequency in the program” is the share of all copies of this DNA position, among every participant, that carry the variant: 0.01 means 1 in 100."),
          h("li", {}, `“In your ancestry group” is the same share among participants whose genetic ancestry is like yours${group ? ` (${group})` : ""}.`),
          h("li", {}, "“≤20” means the variant was counted 20 times or fewer, so at most 20 people carry it: the exact number is withheld to protect everyone's privacy. Such a variant is rare."))),
      table("My variants, rarest first: choose a column heading to sort", [
        { label: "Variant", sort: (r) => r.variant_key, cell: (r) => h("td", {}, h("code", {}, r.variant_key)) },
        { label: "rsID", sort: (r) => r.id || "", cell: (r) => text(r.id) },
        { label: "Your copies", sort: (r) => r.allele_copies, cell: (r) => text(`${copies(r)} (${r.gt})`) },
        { label: "Frequency in the program", num: true, sort: sortAf, cell: (r) => { const c = afCell(r); c.title = oneIn(r.af) || c.title || ""; return c; } },
        { label: "Copies counted (AC)", num: true, sort: sortCount("ac"), cell: (r) => countCell(r, "ac") },
        { label: "Of (AN)", num: true, sort: sortCount("an"), cell: (r) => countCell(r, "an") },
        { label: "In your ancestry group", num: true, sort: (r) => (typeof r.ancestry_af === "number" ? r.ancestry_af : -1), cell: (r) => afCell(r, "ancestry_af") },
      ], rows, 50));
  }

  // ------------------------------------------------------------------ sign-in

  function signin() {
    const box = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true });
    const out = h("div", { "aria-live": "polite" });
    async function submit(ev) {
      ev.preventDefault();
      const t = box.value.trim();
      try {
        const info = await api("/api/v1/info", null, t);
        sessionStorage.setItem(TOKEN, t);
        sessionStorage.setItem(FLASH, `Signed in with a ${info.tier} token.`);
        location.assign(info.tier === "participant" ? "/me" : "/");
      } catch (e) {
        out.replaceChildren(h("p", { class: "error", role: "alert" }, e.status === 401 ? "The server did not accept this token (unknown or revoked)." : e.message));
      }
    }
    page("Sign in",
      h("p", {}, "Paste the access token you were given (it starts with gq_). It is kept in this browser tab until you sign out or close the tab, " +
        "and sent only in the Authorization header of API requests, never in a web address."),
      h("form", { id: "signin", onsubmit: submit }, h("div", { class: "field" }, h("label", { for: "token" }, "Access token"), box),
        h("p", {}, h("button", { type: "submit", class: "primary" }, "Sign in"))), out);
    box.focus();
  }

  // ------------------------------------------------------------------ start

  async function start() {
    const message = sessionStorage.getItem(FLASH);
    sessionStorage.removeItem(FLASH);
    flash(message);
    wireSearch();
    try {
      state.info = await api("/api/v1/info");
    } catch (e) {
      if (e.status === 401) return;
      state.info = null;
    }
    state.tier = state.info ? state.info.tier : "public";
    chrome();
    const path = location.pathname;
    const arg = (prefix) => decodeURIComponent(path.slice(prefix.length));
    if (path === "/") await home();
    else if (path === "/search") search();
    else if (path.startsWith("/variant/")) await variant(arg("/variant/"));
    else if (path.startsWith("/gene/")) await listing("gene", arg("/gene/"));
    else if (path.startsWith("/region/")) await listing("region", arg("/region/"));
    else if (path === "/cohort") await cohort();
    else if (path === "/me") await me();
    else if (path === "/signin") signin();
    else page("Not found", h("p", {}, "No such page. ", h("a", { href: "/" }, "Home")));
  }

  start().catch((e) => { if (!(e instanceof ApiError && e.message === "signed out")) main.replaceChildren(errorBox(e)); })
    .finally(() => { document.body.dataset.ready = "1"; });
})();
