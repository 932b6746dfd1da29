// The demo page: plain JavaScript against the public API (no build step, nothing from a CDN).
"use strict";

const $ = (id) => document.getElementById(id);
const STAGE_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"];

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

async function call(method, path, body) {
  const headers = { "content-type": "application/json" };
  const key = $("api-key").value;
  if (key) headers["x-api-key"] = key;
  const response = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) {
    const error = answer.error || {};
    throw new Error(`${method} ${path}: ${response.status} ${error.message || ""}`);
  }
  return answer;
}

function showHistory(items) {
  const list = $("history");
  list.replaceChildren(...items.slice(-20).reverse().map((item) => {
    const li = document.createElement("li");
    li.textContent = item.title || item.item_id;
    li.dataset.itemId = item.item_id;
    return li;
  }));
}

function refineCell(item) {
  const before = item.explanation && item.explanation.rank_before_refine;
  if (before == null || before === item.rank) return cell("");
  const moved = before > item.rank ? "moved-up" : "moved-down";
  return cell(`${before} → ${item.rank}`, moved);
}

function showRecommendations(answer) {
  $("version").textContent = `(model ${answer.model_version}${answer.refined ? ", refined" : ""})`;
  $("degraded").replaceChildren(...answer.degraded.map((reason) => {
    const span = document.createElement("span");
    span.className = "badge";
    span.textContent = reason;
    return span;
  }));
  $("recs").tBodies[0].replaceChildren(...answer.items.map((item) => {
    const row = document.createElement("tr");
    row.dataset.itemId = item.item_id;
    const reason = item.explanation || {};
    const because = (reason.because || []).map((h) => h.title || h.item_id).join("; ");
    const intent = reason.source === "popularity" ? "popular" : String(reason.intent ?? "");
    const button = document.createElement("button");
    button.className = "add-event";
    button.textContent = "+ event";
    button.title = "Record that the user chose this item, then ask again";
    button.addEventListener("click", () => addEvent(item.item_id));
    const action = document.createElement("td");
    action.append(button);
    row.append(
      cell(String(item.rank)), cell(item.title || item.item_id, "title"),
      cell(item.score.toFixed(3), "score"), cell(intent), cell(because, "because"),
      refineCell(item), action,
    );
    return row;
  }));
  const stages = Object.entries(answer.timings_ms).filter(([name]) => name !== "total");
  const total = stages.reduce((sum, [, ms]) => sum + ms, 0) || 1;
  $("timings").title = `total ${answer.timings_ms.total.toFixed(2)} ms`;
  $("timings").replaceChildren(...stages.map(([name, ms], i) => {
    const bar = document.createElement("div");
    bar.style.width = `${(100 * ms) / total}%`;
    bar.style.background = STAGE_COLOURS[i % STAGE_COLOURS.length];
    bar.textContent = `${name} ${ms.toFixed(2)} ms`;
    bar.title = bar.textContent;
    return bar;
  }));
}

async function ask() {
  const user = $("user").value.trim();
  if (!user) return;
  $("status").textContent = "";
  try {
    const [history, answer] = await Promise.all([
      call("GET", `users/${encodeURIComponent(user)}/history`),
      call("POST", "recommend", {
        user_id: user,
        k: Number($("k").value) || 10,
        refine: $("refine").checked ? "on" : "off",
        explain: true,
      }),
    ]);
    showHistory(history.items);
    showRecommendations(answer);
    document.body.dataset.asked = String(Number(document.body.dataset.asked || 0) + 1);
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function addEvent(itemId) {
  const user = $("user").value.trim();
  try {
    await call("POST", "events", { user_id: user, item_id: itemId });
    await ask();
  } catch (error) {
    $("status").textContent = error.message;
  }
}

async function loadUsers() {
  try {
    const { users } = await call("GET", "demo/users");
    $("known-users").replaceChildren(...users.map((id) => new Option(id, id)));
    $("users").replaceChildren(...users.slice(0, 12).map((id) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = id;
      button.addEventListener("click", () => { $("user").value = id; ask(); });
      return button;
    }));
  } catch (error) {
    $("status").textContent = error.message;
  }
}

$("ask-form").addEventListener("submit", (event) => { event.preventDefault(); ask(); });
loadUsers();
