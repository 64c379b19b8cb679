// The complaint team lead's dashboard: reads /v1/analytics/* with an agent key kept for the browser session.
"use strict";

(() => {
  const KEY_STORE = "triage.dashboard.key";
  const REFRESH_MS = 60_000;
  // Qualitative colours that stay apart for 10 series and print legibly.
  const PALETTE = ["#2f6fba", "#e8890c", "#3a9d6a", "#c8312b", "#7b5ea7", "#1f9bb5", "#b0892a", "#d4649a", "#5d6b7e", "#8fb339"];
  const URGENCY_COLORS = { P1: "#c8312b", P2: "#e8890c", P3: "#2f6fba", P4: "#8a94a3" };
  const SLA_NAMES = { on_track: "正常", due_soon: "即将到期", breached: "已超时", met: "已完成" };
  const SLA_TARGETS = { first_response: "首次响应", resolution: "办结" };
  const SLA_ORDER = ["on_track", "due_soon", "breached", "met"];

  const view = { by: "category", bucket: "day", days: "30", urgency: "all" };
  let labels = null;
  let overview = null;
  let clockSkew = 0; // server clock minus browser clock, so countdowns follow the service's time
  let refreshTimer = null;
  let volumeChart = null;
  let urgencyChart = null;

  const $ = (id) => document.getElementById(id);

  class AuthError extends Error {}

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function api(path, params = {}) {
    const key = sessionStorage.getItem(KEY_STORE);
    if (!key) throw new AuthError("");
    // Relative to the page, so the service also works behind a path prefix.
    const url = new URL(path, document.baseURI);
    for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
    const response = await fetch(url, { headers: { Authorization: `Bearer ${key}` }, cache: "no-store" });
    if (response.status === 401) throw new AuthError("密钥无效或已撤销，请重新输入。");
    if (response.status === 403) throw new AuthError("该密钥没有坐席（agent）权限，请使用坐席或管理员密钥。");
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok) throw new Error(body?.error?.message || `HTTP ${response.status}`);
    return body;
  }

  // -- names and formats ------------------------------------------------------------

  function labelName(head, id) {
    if (head === "department" || !labels) return id;
    return labels[head].find((x) => x.id === id)?.name ?? id;
  }

  function urgencyText(id) {
    return `${id} ${labelName("urgency", id)}`;
  }

  // Times arrive in the deployment's zone; its wall clock is what the team reads, whatever the browser's zone.
  function wallClock(iso, withDate = true) {
    return withDate ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
  }

  function bucketLabel(iso, bucket) {
    return bucket === "day" ? iso.slice(5, 10) : `${iso.slice(5, 10)} ${iso.slice(11, 13)}时`;
  }

  function number(n) {
    return n.toLocaleString("zh-CN");
  }

  function duration(ms) {
    const seconds = Math.floor(Math.abs(ms) / 1000);
    const days = Math.floor(seconds / 86400);
    const hours = Math.floor((seconds % 86400) / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const pad = (n) => String(n).padStart(2, "0");
    if (days) return `${days}天${hours}小时`;
    if (hours) return `${hours}小时${pad(minutes)}分`;
    return `${minutes}分${pad(seconds % 60)}秒`;
  }

  function windowText(window) {
    if (window === "today") return "今日";
    return `近${window.replace("h", "")}小时`;
  }

  // -- countdowns -------------------------------------------------------------------

  function deadlineCell(due, done, serverState) {
    const cell = element("td");
    const text = element("span", "countdown");
    text.dataset.due = due;
    text.dataset.done = done ? serverState : "";
    cell.append(text, element("span", "deadline", wallClock(due)));
    return cell;
  }

  function tick() {
    if (!overview) return;
    const now = Date.now() + clockSkew;
    const soonMs = overview.due_soon_minutes * 60_000;
    for (const node of document.querySelectorAll(".countdown")) {
      let state = node.dataset.done;
      let text;
      if (state) {
        text = state === "met" ? "按时完成" : "超时完成";
      } else {
        const left = Date.parse(node.dataset.due) - now;
        state = left < 0 ? "breached" : left <= soonMs ? "due_soon" : "on_track";
        text = left < 0 ? `超时 ${duration(left)}` : `剩余 ${duration(left)}`;
      }
      node.textContent = text;
      node.className = `countdown ${state}`;
      node.closest("tr")?.classList.toggle("row-breached", state === "breached" && !node.dataset.done);
    }
  }

  // -- rendering --------------------------------------------------------------------

  function renderOverview() {
    const o = overview;
    $("model-name").textContent = o.model.name;
    $("model-version").textContent = o.model.version;
    $("updated-at").textContent = o.now.slice(11, 19);

    $("kpi-open").textContent = number(o.open_total);
    $("kpi-open-note").textContent = Object.entries(o.open_by_status)
      .map(([status, n]) => `${labelName("status", status)} ${n}`)
      .join(" · ");
    $("kpi-p1").textContent = number(o.open_by_urgency.P1 ?? 0);
    $("kpi-breached").textContent = number(o.overdue);
    $("kpi-breached").classList.toggle("nonzero", o.overdue > 0);
    $("kpi-breached-note").textContent = `首次响应 ${o.sla.first_response.breached} · 办结 ${o.sla.resolution.breached}`;
    $("kpi-soon").textContent = number(o.due_soon);
    $("kpi-soon-note").textContent = `${o.due_soon_minutes} 分钟内到期`;
    $("kpi-received").textContent = number(o.received);
    $("kpi-received-note").textContent = `近${view.days}天（${o.since.slice(5, 10)} 起）`;
    $("kpi-abstain").textContent = o.abstain_rate === null ? "—" : `${(o.abstain_rate * 100).toFixed(1)}%`;
    $("kpi-abstain-note").textContent = `近${view.days}天 ${number(o.needs_review)} / ${number(o.received)} 件`;

    renderSlaCounts();
    renderUrgencyChart();
    renderUrgencyFilter();
    renderTickets();
  }

  function renderSlaCounts() {
    const body = $("sla-counts");
    body.replaceChildren();
    for (const [target, name] of Object.entries(SLA_TARGETS)) {
      const row = element("tr");
      row.append(element("td", "", name));
      for (const state of SLA_ORDER) {
        const n = overview.sla[target][state];
        row.append(element("td", n && (state === "breached" || state === "due_soon") ? state : "", number(n)));
      }
      body.append(row);
    }
  }

  function renderUrgencyFilter() {
    const group = $("urgency-filter");
    group.replaceChildren();
    const options = [["all", `全部 ${overview.open_total}`]];
    for (const [id, n] of Object.entries(overview.open_by_urgency)) options.push([id, `${urgencyText(id)} ${n}`]);
    for (const [value, text] of options) {
      const button = element("button", "", text);
      button.type = "button";
      button.setAttribute("aria-pressed", String(view.urgency === value));
      button.addEventListener("click", () => {
        view.urgency = value;
        renderUrgencyFilter();
        renderTickets();
      });
      group.append(button);
    }
  }

  function renderTickets() {
    const body = $("tickets");
    body.replaceChildren();
    const shown = overview.tickets.filter((t) => view.urgency === "all" || t.urgency === view.urgency);
    for (const t of shown) {
      const row = element("tr");
      row.append(element("td", "mono", t.ticket_id), element("td", "status", wallClock(t.received_at)));
      const badge = element("span", "badge", urgencyText(t.urgency));
      badge.style.background = URGENCY_COLORS[t.urgency] ?? "#5d6b7e";
      const urgency = element("td");
      urgency.append(badge);
      row.append(
        urgency,
        element("td", "", labelName("category", t.category)),
        element("td", "", labelName("issue", t.issue)),
        element("td", "", t.department),
        element("td", "status", labelName("status", t.status)),
        deadlineCell(t.first_response_by, t.due_target === "resolution", t.first_response),
        deadlineCell(t.resolve_by, false, t.resolution),
      );
      body.append(row);
    }
    $("tickets-empty").hidden = shown.length > 0;
    const more = $("tickets-truncated");
    more.hidden = !overview.truncated;
    more.textContent = `仅列出最紧急的 ${overview.tickets.length} 件，共 ${overview.open_total} 件未结。`;
    tick();
  }

  function renderUrgencyChart() {
    const ids = Object.keys(overview.open_by_urgency);
    const data = {
      labels: ids.map(urgencyText),
      datasets: [
        {
          data: ids.map((id) => overview.open_by_urgency[id]),
          backgroundColor: ids.map((id) => URGENCY_COLORS[id] ?? "#5d6b7e"),
          borderWidth: 2,
          borderColor: "#fff",
        },
      ],
    };
    if (urgencyChart) {
      urgencyChart.data = data;
      urgencyChart.update("none");
      return;
    }
    urgencyChart = new Chart($("urgency-chart"), {
      type: "doughnut",
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        cutout: "62%",
        plugins: { legend: { position: "right", labels: { boxWidth: 12, padding: 14 } } },
      },
    });
  }

  function renderVolume(volume) {
    const type = volume.bucket === "day" ? "bar" : "line";
    // Colours follow each key's place in the taxonomy, so a category keeps its colour when others are empty.
    const datasets = volume.series
      .map((s, i) => ({ s, color: PALETTE[i % PALETTE.length] }))
      .filter(({ s }) => s.total > 0)
      .map(({ s, color }) => ({
        label: s.name,
        data: s.counts,
        backgroundColor: color,
        borderColor: color,
        borderWidth: type === "line" ? 1.5 : 0,
        pointRadius: 0,
        tension: 0.25,
        stack: "volume",
        maxBarThickness: 28,
      }));
    const data = { labels: volume.buckets.map((b) => bucketLabel(b, volume.bucket)), datasets };
    if (volumeChart && volumeChart.config.type === type) {
      volumeChart.data = data;
      volumeChart.update("none");
      return;
    }
    volumeChart?.destroy();
    volumeChart = new Chart($("volume-chart"), {
      type,
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: type === "bar", grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { stacked: type === "bar", beginAtZero: true, ticks: { precision: 0 }, grid: { color: "#eef1f5" } },
        },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12, padding: 12 } },
          tooltip: {
            callbacks: {
              footer: (items) => `合计 ${items.reduce((sum, item) => sum + item.parsed.y, 0)} 件`,
            },
          },
        },
      },
    });
  }

  function renderAlerts(alerts) {
    const list = $("alerts");
    list.replaceChildren();
    if (!alerts.length) {
      list.append(element("li", "calm", "暂无异常波动"));
      return;
    }
    for (const a of alerts) {
      const item = element("li", "alert");
      item.dataset.category = a.category;
      const title = element("div", "alert-title");
      const ratio = a.expected > 0 ? `×${(a.observed / a.expected).toFixed(1)}` : "新增";
      title.append(element("span", "", `${labelName("category", a.category)} · ${windowText(a.window)}`));
      title.append(element("span", "ratio", ratio));
      const body = element("div", "alert-body");
      const fact = (label, value) => {
        const span = element("span", "", `${label} `);
        span.append(element("b", "", value));
        return span;
      };
      body.append(
        fact("实际", `${a.observed} 件`),
        fact("基线", `${a.expected.toFixed(1)} 件`),
        fact("显著性", a.score.toFixed(1)),
        fact("起于", wallClock(a.since)),
      );
      item.append(title, body);
      list.append(item);
    }
  }

  // -- loading ----------------------------------------------------------------------

  function showError(message) {
    const bar = $("error-bar");
    bar.hidden = !message;
    bar.textContent = message ? `数据加载失败：${message}` : "";
  }

  function showLogin(message) {
    sessionStorage.removeItem(KEY_STORE);
    clearInterval(refreshTimer);
    refreshTimer = null;
    $("login-error").textContent = message || "";
    $("login").hidden = false;
    $("login-key").value = "";
    $("login-key").focus();
  }

  async function guarded(load) {
    try {
      await load();
      showError("");
    } catch (error) {
      if (error instanceof AuthError) showLogin(error.message);
      else showError(error.message);
    }
  }

  async function loadVolume() {
    renderVolume(await api("v1/analytics/volume", { by: view.by, bucket: view.bucket, days: view.days }));
  }

  async function loadAll() {
    labels ??= await api("v1/analytics/labels");
    const asked = Date.now();
    const [o, alerts] = await Promise.all([
      api("v1/analytics/overview", { days: view.days }),
      api("v1/analytics/alerts"),
      loadVolume(),
    ]);
    clockSkew = Date.parse(o.now) - (asked + Date.now()) / 2;
    overview = o;
    renderOverview();
    renderAlerts(alerts);
    refreshTimer ??= setInterval(() => guarded(loadAll), REFRESH_MS);
  }

  function bindControls() {
    for (const group of document.querySelectorAll(".segmented[data-param]")) {
      group.addEventListener("click", (event) => {
        const button = event.target.closest("button");
        if (!button) return;
        for (const b of group.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === button));
        view[group.dataset.param] = button.dataset.value;
        guarded(group.dataset.param === "days" ? loadAll : loadVolume);
      });
    }
    $("refresh").addEventListener("click", () => guarded(loadAll));
    $("logout").addEventListener("click", () => showLogin(""));
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("login-key").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORE, key);
      $("login").hidden = true;
      guarded(loadAll);
    });
  }

  function start() {
    const style = getComputedStyle(document.documentElement);
    Chart.defaults.font.family = style.fontFamily;
    Chart.defaults.color = "#667085";
    bindControls();
    setInterval(tick, 1000);
    if (sessionStorage.getItem(KEY_STORE)) guarded(loadAll);
    else showLogin("");
  }

  start();
})();
