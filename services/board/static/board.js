// The board's pages: poll the board's JSON and redraw (Chart.js for charts, Cytoscape + dagre for the DAG).
"use strict";
const weftBoard = (() => {
  const POLL_MS = 1500;
  const COLOURS = { success: "#2e9b50", running: "#2f6fd6", failed: "#c83232", stopped: "#b7862b", waiting: "#9aa3b5" };
  const PALETTE = ["#2f6fd6", "#c83232", "#2e9b50", "#b7862b", "#7a3fc4", "#138a8a", "#d4572a", "#555"];

  const text = (value) => (value === null || value === undefined ? "" : String(value));
  const cell = (value) => { const td = document.createElement("td"); td.textContent = text(value); return td; };
  const seconds = (s) => (s === null || s === undefined ? "" : s >= 60 ? `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s` : `${s.toFixed(1)}s`);
  const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");
  const ended = (status) => ["success", "failed", "stopped"].includes(status);

  async function getJson(url) {
    const reply = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (reply.status === 401) { window.location = "/login"; throw new Error("logged out"); }
    if (!reply.ok) throw new Error(`${url}: ${reply.status}`);
    return reply.json();
  }

  function every(fn, stopWhen) {
    const tick = async () => {
      let done = false;
      try { done = await fn(); } catch (err) { console.warn(err); }
      if (!done || !stopWhen) setTimeout(tick, POLL_MS);
    };
    setTimeout(tick, POLL_MS);
  }

  function pollJobs() {
    const body = document.getElementById("jobs-body");
    every(async () => {
      const { jobs } = await getJson(`/api/jobs${window.location.search}`);
      const checked = new Set([...body.querySelectorAll("input:checked")].map((i) => i.value));
      body.replaceChildren(...jobs.map((job) => {
        const tr = document.createElement("tr");
        tr.dataset.job = job.job_id;
        const box = document.createElement("td");
        box.innerHTML = `<input type="checkbox" name="job">`;
        box.firstChild.value = job.job_id;
        box.firstChild.checked = checked.has(job.job_id);
        const link = document.createElement("td");
        const a = document.createElement("a");
        a.href = `/jobs/${encodeURIComponent(job.job_id)}`; a.textContent = job.job_id; link.append(a);
        const status = document.createElement("td");
        status.innerHTML = `<span class="status"></span>`;
        status.firstChild.classList.add(job.status); status.firstChild.textContent = job.status;
        tr.append(box, link, cell(job.name), status, cell(`${job.progress}%`), cell(job.my_roles.join(", ")),
          cell(when(job.created_at_ms)), cell(seconds(job.elapsed_s)), cell(job.message));
        return tr;
      }));
      return false;
    }, false);
  }

  function taskRows(body, tasks, withComponent, jobId) {
    body.replaceChildren(...tasks.map((t) => {
      const tr = document.createElement("tr");
      tr.dataset.component = t.component; tr.dataset.role = t.role; tr.dataset.status = t.status;
      const cells = [];
      if (withComponent) {
        const td = document.createElement("td"); const a = document.createElement("a");
        a.href = `/jobs/${encodeURIComponent(jobId)}/tasks/${encodeURIComponent(t.component)}`; a.textContent = t.component;
        td.append(a); cells.push(td, cell(t.module));
      }
      const status = document.createElement("td");
      status.innerHTML = `<span class="status"></span>`;
      status.firstChild.classList.add(t.status); status.firstChild.textContent = t.status;
      cells.push(cell(t.member), cell(t.role), status, cell(t.attempt), cell(`${t.progress}%`), cell(seconds(t.elapsed_s)),
        cell(t.waiting || t.error));
      tr.append(...cells);
      return tr;
    }));
  }

  function followJob(job) {
    const cy = cytoscape({
      container: document.getElementById("dag"),
      elements: [
        ...job.dag.nodes.map((n) => ({ data: { id: n.id, label: `${n.id}\n${n.module}`, state: n.state } })),
        ...job.dag.edges.map((e) => ({ data: { id: `${e.source}->${e.target}`, source: e.source, target: e.target } })),
      ],
      style: [
        { selector: "node", style: { shape: "round-rectangle", width: 150, height: 44, label: "data(label)", "text-wrap": "wrap",
          "text-valign": "center", color: "#fff", "font-size": 11, "background-color": (n) => COLOURS[n.data("state")] || "#9aa3b5" } },
        { selector: "edge", style: { width: 2, "line-color": "#9aa3b5", "target-arrow-color": "#9aa3b5", "target-arrow-shape": "triangle", "curve-style": "bezier" } },
      ],
      layout: { name: "dagre", rankDir: "LR", nodeSep: 20, rankSep: 60 },
      userZoomingEnabled: false,
      maxZoom: 1.2,  // a two-component job stays at reading size
    });
    cy.on("tap", "node", (event) => { window.location = `/jobs/${encodeURIComponent(job.job_id)}/tasks/${encodeURIComponent(event.target.id())}`; });
    window.weftDag = cy;
    const draw = (view) => {
      view.dag.nodes.forEach((n) => cy.getElementById(n.id).data("state", n.state));
      document.getElementById("job-status").textContent = view.status;
      document.getElementById("job-status").className = `status ${view.status}`;
      document.getElementById("job-progress").textContent = view.progress;
      document.getElementById("job-elapsed").textContent = seconds(view.elapsed_s);
      document.getElementById("job-message").textContent = view.message;
      taskRows(document.getElementById("tasks-body"), view.tasks, true, view.job_id);
      const waiting = document.getElementById("waiting");
      waiting.replaceChildren(...view.tasks.filter((t) => t.waiting).map((t) => {
        const li = document.createElement("li");
        li.textContent = `${t.component} (${t.role} ${t.member}): ${t.waiting}`;
        return li;
      }));
      return ended(view.status);
    };
    draw(job);
    every(async () => draw(await getJson(`/api/jobs/${encodeURIComponent(job.job_id)}`)), true);
  }

  function lineChart(canvas, series, xLabel, yLabel) {
    if (!canvas) return null;
    const existing = Chart.getChart(canvas);
    const datasets = series.map((s, i) => ({ label: s.label, data: s.points, borderColor: PALETTE[i % PALETTE.length],
      backgroundColor: PALETTE[i % PALETTE.length], pointRadius: s.points.length > 60 ? 0 : 2, showLine: true, tension: 0 }));
    canvas.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
    if (existing) { existing.data.datasets = datasets; existing.update("none"); return existing; }
    return new Chart(canvas, { type: "scatter", data: { datasets },
      options: { animation: false, maintainAspectRatio: false, scales: { x: { title: { display: true, text: xLabel } }, y: { title: { display: true, text: yLabel } } } } });
  }

  function followTask(task) {
    (task.log_roles || []).forEach((role) => tailLog(task, role));
    const draw = (view) => {
      taskRows(document.getElementById("task-rows"), view.tasks, false, view.job_id);
      const loss = view.curves.loss;
      document.getElementById("loss-none").hidden = loss.length > 0;
      if (loss.length) lineChart(document.getElementById("loss-chart"), loss, "iteration", "loss");
      return ended(view.job_status) && view.tasks.every((t) => ended(t.status));
    };
    if (!draw(task)) {
      const events = document.getElementById("events");
      const source = new EventSource(`/api/jobs/${encodeURIComponent(task.job_id)}/tasks/${encodeURIComponent(task.component)}/events`);
      source.onmessage = (message) => {
        const line = JSON.parse(message.data);
        events.textContent += `${when(line.time_ms)}  ${line.who}  ${line.text}\n`;
      };
      source.addEventListener("end", () => source.close());
      source.addEventListener("failure", (message) => { events.textContent += `${JSON.parse(message.data).error}\n`; source.close(); });
      every(async () => draw(await getJson(`/api/jobs/${encodeURIComponent(task.job_id)}/tasks/${encodeURIComponent(task.component)}`)), true);
    }
  }

  // The task's log at this member, one panel per role: polled by offset, shown as plain text.
  const LOG_KEEP_CHARS = 256 * 1024;
  function tailLog(task, role) {
    const panel = document.getElementById(`log-${role}`);
    const note = document.getElementById(`log-note-${role}`);
    const base = `/api/jobs/${encodeURIComponent(task.job_id)}/tasks/${encodeURIComponent(task.component)}/log`;
    let offset = 0;
    const poll = async () => {
      const chunk = await getJson(`${base}?role=${encodeURIComponent(role)}&offset=${offset}`);
      if (chunk.restarted) panel.textContent += "[the log was rotated: earlier lines were skipped]\n";
      if (chunk.text) {
        const shown = panel.textContent + chunk.text;
        panel.textContent = shown.length > LOG_KEEP_CHARS ? shown.slice(shown.length - LOG_KEEP_CHARS) : shown;
        panel.scrollTop = panel.scrollHeight;
      }
      const moved = chunk.next_offset !== offset;
      offset = chunk.next_offset;
      note.textContent = chunk.complete ? `attempt ${chunk.attempt}: ${chunk.status}, the whole log is shown`
        : chunk.attempt ? `attempt ${chunk.attempt}: ${chunk.status}` : "not started yet";
      if (moved && !chunk.complete) return poll();  // more is waiting: read it now
      return chunk.complete;
    };
    poll().then((done) => { if (!done) every(poll, true); }, (err) => { note.textContent = String(err); every(poll, true); });
  }

  async function overlayCurves(jobs) {
    if (!jobs.length) return;
    const query = jobs.map((j) => `job=${encodeURIComponent(j)}`).join("&");
    const curves = await getJson(`/api/curves?${query}`);
    lineChart(document.getElementById("curve-loss"), curves.loss, "iteration", "loss");
    lineChart(document.getElementById("curve-roc"), curves.roc, "false positive rate", "true positive rate");
    lineChart(document.getElementById("curve-ks"), curves.ks, "threshold", "TPR - FPR");
    lineChart(document.getElementById("curve-lift"), curves.lift, "share of population", "lift");
    compareTable(curves.jobs, curves.differences);
  }

  function headRow(head, labels) {
    const tr = document.createElement("tr");
    labels.forEach((label) => { const th = document.createElement("th"); th.textContent = label; tr.append(th); });
    head.replaceChildren(tr);
  }

  function compareTable(jobs, differences) {
    const scoreNames = [...new Set(jobs.flatMap((j) => Object.keys(j.scores)))].sort();
    const round = (v) => (typeof v === "number" ? Number(v.toFixed(6)) : text(v));
    headRow(document.getElementById("compare-head"), ["job", "name", "status", "elapsed", ...scoreNames]);
    document.getElementById("compare-body").replaceChildren(...jobs.map((j) => {
      const tr = document.createElement("tr");
      tr.dataset.job = j.job_id;
      tr.append(cell(j.job_id), cell(j.name), cell(j.status), cell(seconds(j.elapsed_s)), ...scoreNames.map((s) => cell(round(j.scores[s]))));
      return tr;
    }));
    document.getElementById("differences-none").hidden = differences.length > 0;
    headRow(document.getElementById("differences-head"), ["setting", ...jobs.map((j) => j.name || j.job_id)]);
    document.getElementById("differences-body").replaceChildren(...differences.map((d) => {
      const tr = document.createElement("tr");
      tr.append(cell(d.setting), ...jobs.map((j) => cell(JSON.stringify(d.values[j.job_id] ?? null))));
      return tr;
    }));
  }

  function barChart(canvas, labels, values, label) {
    canvas.dataset.points = String(values.length);
    return new Chart(canvas, { type: "bar", data: { labels, datasets: [{ label, data: values, backgroundColor: values.map((v) => (v >= 0 ? "#2f6fd6" : "#c83232")) }] },
      options: { animation: false, maintainAspectRatio: false, indexAxis: "y" } });
  }

  function drawModels(models) {
    models.forEach((model, index) => {
      if (model.weights.length) {
        barChart(document.getElementById(`weights-${index + 1}`), model.weights.map((w) => w.feature), model.weights.map((w) => w.weight), "weight");
      }
      if (model.importance.length) {
        barChart(document.getElementById(`importance-${index + 1}`), model.importance.map((w) => w.feature), model.importance.map((w) => w.value), "importance");
      }
    });
  }

  return { pollJobs, followJob, followTask, overlayCurves, drawModels };
})();
