// The explore page: sliders -> trajectories. Live: asks the local server (stock-and-flow view while
// dragging, a full run when the slider rests). Static export: looks up a precomputed grid of full runs.
(() => {
  "use strict";
  const C = JSON.parse(document.getElementById("config").textContent);
  const STATIC = !!C.grid;
  const values = {};
  C.sliders.forEach((s) => { values[s.address] = s.value; });
  const state = { sf: null, full: null, bands: null, seq: 0, aborts: {}, timings: [], draws: 0, last: null,
                  values, error: null };
  window.explore = state; // read by the tests and the benchmark

  // -- formatting ------------------------------------------------------------------------
  const monthOf = (year) => Math.floor(year * 12 + 1e-6);
  const dateText = (year) => {
    const m = monthOf(year);
    return `${Math.floor(m / 12)}-${String((m % 12) + 1).padStart(2, "0")}`;
  };
  const number = (v) => {
    const a = Math.abs(v);
    if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 1 : 2)} M`;
    if (a >= 1e3) return `${(v / 1e3).toFixed(a >= 1e4 ? 0 : 1)} k`;
    return `${+v.toFixed(3)}`;
  };
  const fmt = (v) => (v == null ? "–" : number(v));
  const valueText = (s, v) => (s.type === "date" ? dateText(v) : `${number(v)}${s.unit ? " " + s.unit : ""}`);

  // -- controls ----------------------------------------------------------------------------
  const controls = document.getElementById("controls");
  document.getElementById("description").textContent =
    `${C.description} — scenario file ${C.path}, seed ${C.seed}`;
  const grid = STATIC ? C.grid : null;
  const gridIndex = {};
  if (grid) grid.addresses.forEach((a, i) => { gridIndex[a] = i; });
  const gridAt = {};
  const groups = {};
  C.sliders.forEach((s) => {
    if (grid && !(s.address in gridIndex)) return;
    if (s.type === "bool") { addSwitch(s); return; }
    const row = document.createElement("div");
    row.className = "slider" + (s.stockflow ? "" : " agents");
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "range";
    input.dataset.address = s.address;
    input.title = s.doc + (s.stockflow ? "" : " (acts through the agents: the stock-and-flow view holds them)");
    const shown = document.createElement("output");
    if (grid) {
      const levels = grid.levels[gridIndex[s.address]];
      input.min = 0; input.max = levels.length - 1; input.step = 1;
      let nearest = 0;
      levels.forEach((l, i) => { if (Math.abs(l - s.value) < Math.abs(levels[nearest] - s.value)) nearest = i; });
      input.value = nearest;
      gridAt[s.address] = nearest;
      values[s.address] = levels[nearest];
    } else if (s.type === "date") {
      input.min = monthOf(s.low); input.max = monthOf(s.high); input.step = 1; input.value = monthOf(s.value);
    } else {
      input.min = s.low; input.max = s.high; input.step = s.step; input.value = s.value;
    }
    shown.textContent = valueText(s, values[s.address]);
    label.textContent = s.label + (s.stockflow ? "" : " ◦");
    label.appendChild(shown);
    row.append(label, input);
    group(s).appendChild(row);
    input.addEventListener("input", () => {
      const started = performance.now();
      if (grid) {
        gridAt[s.address] = +input.value;
        values[s.address] = grid.levels[gridIndex[s.address]][+input.value];
      } else {
        values[s.address] = s.type === "date" ? +input.value / 12 : +input.value;
      }
      shown.textContent = valueText(s, values[s.address]);
      state.moved = s;
      if (grid) showGrid(started); else askStockflow(started);
    });
    input.addEventListener("change", () => { if (!grid) rest(); });
  });
  function group(s) {
    if (!groups[s.group]) {
      const set = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = s.group;
      set.appendChild(legend);
      controls.appendChild(set);
      groups[s.group] = set;
    }
    return groups[s.group];
  }
  function addSwitch(s) { // a policy in force or not: a checkbox, asked like a slider step and a release at once
    const row = document.createElement("div");
    row.className = "slider switch" + (s.stockflow ? "" : " agents");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.address = s.address;
    box.checked = !!s.value;
    values[s.address] = !!s.value;
    label.append(box, ` in force${s.stockflow ? "" : " ◦"}`);
    row.appendChild(label);
    group(s).appendChild(row);
    box.addEventListener("change", () => {
      values[s.address] = box.checked;
      state.moved = s;
      askStockflow(performance.now());
      rest();
    });
  }
  if (!grid) {
    const set = document.createElement("fieldset");
    set.innerHTML = '<legend>save</legend><input id="save-name" value="' + C.scenario + '_explored" ' +
      'aria-label="scenario name"> <button id="save">Save scenario</button><p id="saved"></p>';
    controls.prepend(set);
    document.getElementById("save").addEventListener("click", saveScenario);
  }
  const note = document.createElement("p");
  note.className = "note";
  note.textContent = grid
    ? "Static export: each setting is a precomputed full run (no server)."
    : "◦ acts through the agents (firms, institutions): the stock-and-flow view holds them as in the explored run; " +
      "the full model follows when the slider rests.";
  controls.appendChild(note);

  // -- charts ------------------------------------------------------------------------------
  document.getElementById("charts").insertAdjacentHTML("beforebegin",
    '<p class="legend"><span class="ref">━ ' + C.scenario + " as explored (one full run)</span> " +
    (STATIC ? "" : "<span>╍ stock-and-flow view</span> ") + "<span>━ full model</span>" +
    (C.ensemble ? " <span>▒ calibration ensemble 5-95%</span>" : "") +
    " <span>● bulletin ○ census</span> <span>┄ plan level</span></p>");
  const time = C.reference.time;
  const charts = {};
  const empty = () => time.map(() => null);
  const faint = (hex, alpha) => hex + alpha;
  Object.entries(C.series).forEach(([key, meta]) => {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.series = key;
    document.getElementById("charts").appendChild(box);
    const observed = C.observed[key] || { points: [], plans: [] };
    const opts = {
      title: meta.title,
      width: 460, height: 230,
      scales: { x: { time: false }, y: { range: (u, lo, hi) => yRange(lo, hi, observed) } },
      axes: [{ values: (u, ticks) => ticks.map((t) => t.toFixed(0)) },
             { size: 60, values: (u, ticks) => ticks.map(number) }],
      series: [
        { label: "year", value: (u, v) => (v == null ? "" : dateText(v)) },
        { label: `${C.scenario} (explored)`, stroke: faint("#555555", "66"), width: 1.5, value: (u, v) => fmt(v) },
        { label: "ensemble 5%", stroke: faint(meta.colour, "44"), width: 0.5, value: (u, v) => fmt(v) },
        { label: "ensemble 95%", stroke: faint(meta.colour, "44"), width: 0.5, value: (u, v) => fmt(v) },
        { label: "stock-and-flow view", stroke: meta.colour, width: 1.5, dash: [6, 4], value: (u, v) => fmt(v) },
        { label: "full model", stroke: meta.colour, width: 2.2, value: (u, v) => fmt(v) },
      ],
      bands: [{ series: [3, 2], fill: faint(meta.colour, "22") }],
      hooks: { draw: [(u) => drawObserved(u, observed)] },
      legend: { show: false },
    };
    const data = [time, C.reference.series[key], empty(), empty(), empty(), empty()];
    charts[key] = new uPlot(opts, data, box);
  });
  function yRange(lo, hi, observed) {
    const extra = [];
    observed.points.forEach((p) => extra.push(p[1]));
    observed.plans.forEach((p) => { if (p[2] != null) extra.push(p[2]); if (p[3] != null) extra.push(p[3]); });
    const all = [lo, hi, ...extra].filter((v) => v != null && isFinite(v));
    let a = Math.min(...all), b = Math.max(...all);
    if (a === b) { a -= 1; b += 1; }
    const pad = (b - a) * 0.06;
    return [Math.max(0, a - pad), b + pad];
  }

  function drawObserved(u, observed) {
    const ctx = u.ctx;
    ctx.save();
    const [x0, x1] = [u.scales.x.min, u.scales.x.max];
    observed.plans.forEach(([start, end, low, high]) => {
      ctx.strokeStyle = C.plan_colour;
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1.5;
      [low, high].forEach((level) => {
        if (level == null) return;
        const a = u.valToPos(Math.max(start, x0), "x", true), b = u.valToPos(Math.min(Math.max(end, start + 0.4), x1), "x", true);
        const y = u.valToPos(level, "y", true);
        ctx.beginPath(); ctx.moveTo(a, y); ctx.lineTo(b, y); ctx.stroke();
      });
    });
    ctx.setLineDash([]);
    observed.points.forEach(([t, v, kind]) => {
      if (t < x0 || t > x1) return;
      ctx.fillStyle = kind === "census" ? "#ffffff" : C.observed_colour;
      ctx.strokeStyle = C.observed_colour;
      ctx.beginPath();
      ctx.arc(u.valToPos(t, "x", true), u.valToPos(v, "y", true), 3.5 * devicePixelRatio, 0, 2 * Math.PI);
      ctx.fill(); ctx.stroke();
    });
    ctx.restore();
  }

  function redraw(started, kind, seq, answered) {
    const drawing = performance.now();
    Object.entries(charts).forEach(([key, u]) => {
      const band = state.bands && state.bands.bands[key];
      u.setData([
        time,
        C.reference.series[key],
        band ? band[0] : empty(),
        band ? band[1] : empty(),
        state.sf && key in state.sf.series ? state.sf.series[key] : empty(),
        state.full ? state.full.series[key] : empty(),
      ]);
    });
    state.draws += 1;
    if (started != null) {
      requestAnimationFrame(() => {
        const ms = performance.now() - started;
        // ms: from the step or release to the frame after the redraw; answered: to the parsed answer;
        // drawn: setting the charts' data (the browser paints them before the frame)
        state.timings.push({ kind, seq, ms, answered: answered == null ? null : answered - started,
                             drawn: performance.now() - drawing,
                             server: (kind === "full" ? state.full : state.sf || {}).seconds });
        state.last = { kind, seq, ms };
        describe();
      });
    } else {
      describe();
    }
  }

  // -- talking to the server ------------------------------------------------------------------
  async function ask(kind, body) {
    if (state.aborts[kind]) state.aborts[kind].abort(); // the previous request of this kind is stale
    const control = new AbortController();
    state.aborts[kind] = control;
    try {
      const response = await fetch(`/api/${kind}`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body), signal: control.signal,
      });
      const answer = await response.json();
      if (answer.stale) return null;
      if (answer.error) { state.error = answer.error; describe(); return null; }
      state.error = null;
      return answer;
    } catch (error) {
      if (error.name === "AbortError") return null;
      state.error = String(error); describe(); return null;
    }
  }

  async function askStockflow(started) {
    const seq = ++state.seq;
    state.full = null; state.bands = null; state.pending = "stockflow";
    const answer = await ask("stockflow", { seq, values });
    if (!answer || seq !== state.seq) return;
    state.sf = answer;
    redraw(started, "stockflow", seq, performance.now());
  }

  // The slider rests when it is released (its `change` event; a key step fires `input` and `change`
  // together): the full run starts at once. A newer step makes it stale: the server stops it at its
  // next month and this page drops any answer older than its newest request.
  async function rest() {
    const started = performance.now();
    const seq = state.seq;
    state.pending = "full"; describe();
    const answer = await ask("full", { seq, values });
    if (!answer || seq !== state.seq) return;
    state.full = answer; state.pending = null;
    redraw(started, "full", seq, performance.now());
    askBands(seq); // after the full run: computed beside it they would share its core and delay it
  }

  function askBands(seq) {
    if (C.ensemble) ask("bands", { seq, values }).then((a) => {
      if (a && seq === state.seq) { state.bands = a.bands; redraw(null); }
    });
  }

  function showGrid(started) {
    let index = 0;
    grid.addresses.forEach((a, i) => { index = index * grid.levels[i].length + gridAt[a]; });
    state.seq += 1;
    state.full = { series: grid.runs[index], seconds: 0 };
    state.sf = null;
    redraw(started, "grid", state.seq);
  }

  async function saveScenario() {
    const out = document.getElementById("saved");
    const name = document.getElementById("save-name").value.trim();
    const response = await fetch("/api/save", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name, values }),
    });
    const answer = await response.json();
    out.textContent = answer.error ? `not saved: ${answer.error}` : `saved ${answer.path} — python -m sim run ${answer.path}`;
    state.saved = answer;
  }

  // -- what the page says it shows ------------------------------------------------------------
  function describe() {
    const status = document.getElementById("status");
    const parts = [];
    if (state.error) parts.push(`Refused: ${state.error}`);
    if (grid) {
      parts.push("Showing a precomputed full run of the model at this grid point (solid); grey: the explored scenario.");
    } else if (state.full && !state.full.gap) {
      parts.push(`Showing the full model at the explored setting (solid; the run the page started from, ` +
        `seed ${C.seed}, ${state.full.seconds.toFixed(2)} s). Move a slider.`);
    } else if (state.full) {
      const gaps = Object.entries(state.full.gap)
        .map(([k, g]) => `${C.series[k].title} ${number(g.absolute)} (${(100 * g.relative).toFixed(2)}%)`);
      parts.push(`Showing the full model (solid; one run, seed ${C.seed}, ${state.full.seconds.toFixed(2)} s), ` +
        `with the stock-and-flow view dashed. The stock-and-flow view is off from this full run by at most: ${gaps.join("; ")}.`);
    } else if (state.sf) {
      parts.push(`Showing the stock-and-flow view (dashed; ${(1000 * state.sf.seconds).toFixed(0)} ms): the agents held as ` +
        "in the explored run, the policy timeline and the population stocks recomputed. " +
        (state.pending === "full" ? "Full model run under way…" : "The full model runs when the slider rests."));
      if (state.moved && !state.moved.stockflow) parts.push(`${state.moved.label} acts through the agents: only the full model answers it.`);
    }
    if (state.bands) parts.push(`Band: 5-95% of ${state.bands.runs} calibration-ensemble parameter sets (stock-and-flow view).`);
    status.textContent = parts.join(" ");
  }

  document.getElementById("method").textContent =
    (grid ? `Grid: ${grid.addresses.join(" × ")} (${grid.runs.length} full runs). ` : "") +
    "Black dots: statistical bulletins; open dots: censuses; dashed lines: plan levels (e.g. Beijing's 23 million cap). " +
    (C.ensemble
      ? `Bands: ${C.ensemble} parameter sets of ${C.ensemble_path}, each replacing the setting's values of the ` +
        "parameters it holds, stock-and-flow view, drawn when the slider rests."
      : `No calibration ensemble (${C.ensemble_path}): no bands.`);
  if (grid) showGrid(null);
  else { state.full = { series: C.reference.series, seconds: C.reference.seconds }; redraw(null); askBands(state.seq); }
})();
