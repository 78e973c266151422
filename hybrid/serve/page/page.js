// The page for people: paste an article and see its suggestions, with the reason for each
// tag; accept or correct them (POST /v1/feedback); or review the articles the model is
// least sure of, one at a time. Plain DOM: every text from the server goes in as text,
// never as HTML. No build step.
"use strict";

const TIMEOUT_MS = 15000;
const KEY = "hybrid-api-key";
const state = { model: null, queue: [], next: 0 };
const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function call(path, { method = "GET", body = null } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  const headers = { Accept: "application/json" };
  if (body !== null) headers["Content-Type"] = "application/json";
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  try {
    const response = await fetch(path, {
      method, headers, signal: controller.signal,
      body: body === null ? null : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
    return data;
  } catch (error) {
    if (error.name === "AbortError") throw new Error(`服务器 ${TIMEOUT_MS / 1000} 秒内没有回答`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function percent(x) { return `${Math.round(x * 100)}%`; }

function tagReason(reason) {
  if (!reason) return "模型建议";
  if (reason.source === "llm" && reason.score === null) return "LLM 建议（正文或本站标签中有）";
  const parts = [];
  if (reason.in_text) parts.push("正文中出现");
  const n = reason.similar_articles.length;
  if (n) parts.push(`${n}/${reason.neighbours} 篇最相似的已标注文章用了它`);
  if (!parts.length) parts.push("排序模型认为很可能是");
  if (reason.score !== null) parts.push(`得分 ${reason.score.toFixed(2)}`);
  return parts.join(" · ");
}

function badges(s) {
  const out = [el("span", { class: "badge", title: "首选分类正确的概率（已校准）" },
    `首选分类置信度 ${percent(s.confidence)}`)];
  if (s.source === "llm") out.push(el("span", { class: "badge" }, "分类来自 LLM"));
  if (s.zero_shot) out.push(el("span", { class: "badge warn" }, "零样本模型（尚无标注）"));
  if (s.llm && s.llm.status === "timeout") {
    out.push(el("span", { class: "badge warn" }, "LLM 超时：显示模型自己的答案"));
  }
  for (const flag of s.flags || []) {
    if (!flag.startsWith("missing:")) out.push(el("span", { class: "badge warn" }, flag));
  }
  return out;
}

// One suggestion to accept or correct. `s`: {id, _id (a collection's article: its typed
// _id), categories, tags, confidence, scores, reasons}; `options.onSaved` runs after a save
// (the review queue moves on).
function editor(container, s, options = {}) {
  const node = $("#editor").content.firstElementChild.cloneNode(true);
  $(".article-title", node).textContent = options.title || "建议";
  $(".excerpt", node).textContent = options.excerpt || "";
  $(".summary", node).append(...badges(s));
  $(".max-cats", node).textContent = state.model ? state.model.max_categories : 3;

  const names = state.model ? state.model.categories.map((c) => c.name) : s.categories;
  const scores = s.scores || {};
  const ordered = [...names].sort((a, b) => (scores[b] || 0) - (scores[a] || 0));
  for (const name of ordered) {
    const box = el("input", { type: "checkbox", value: name });
    box.checked = s.categories.includes(name);
    const middle = el("span", {}, el("span", {}, name));
    if (name in scores) {
      const bar = el("span", { class: "bar" }, el("span"));
      bar.firstChild.style.width = percent(scores[name]);
      middle.append(bar);
    }
    const label = el("label", {}, box, middle,
      el("span", { class: "score" }, name in scores ? percent(scores[name]) : ""));
    $(".categories", node).append(
      el("li", { class: s.categories.includes(name) ? "suggested" : "" }, label));
  }

  const tagList = $(".tags", node);
  const addTag = (tag, reasonText, added) => {
    const remove = el("button", { type: "button", class: "remove", "aria-label": `删除标签 ${tag}` }, "×");
    const item = el("li", { "data-tag": tag },
      el("span", { class: added ? "tag added" : "tag" }, tag),
      el("span", { class: "reason" }, reasonText), remove);
    remove.addEventListener("click", () => item.remove());
    tagList.append(item);
  };
  const reasons = Object.fromEntries((s.reasons || []).map((r) => [r.tag, r]));
  for (const tag of s.tags) addTag(tag, tagReason(reasons[tag]), false);
  $(".add-tag", node).addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $(".tag-input", node);
    const tag = input.value.trim();
    const present = [...tagList.children].map((li) => li.dataset.tag.toLowerCase());
    if (tag && !present.includes(tag.toLowerCase())) addTag(tag, "人工添加", true);
    input.value = "";
  });

  const status = $(".status", node);
  const say = (text, kind) => { status.textContent = text; status.className = `status ${kind}`; };
  const save = async (categories, tags) => {
    const id = options.id ? options.id() : s.id;
    if (!id) return say("需要文章 ID 才能保存：填在正文下方的“文章 ID”里。", "error");
    if (!categories.length) return say("至少勾选一个分类。", "error");
    const most = state.model ? state.model.max_categories : 3;
    if (categories.length > most) return say(`最多勾选 ${most} 个分类。`, "error");
    for (const button of node.querySelectorAll(".actions button")) button.disabled = true;
    say("正在保存…", "");
    try {
      // an article of a collection by its typed _id, sent back as the server gave it
      const article = s._id === undefined ? { id } : { _id: s._id };
      const saved = await call("/v1/feedback",
        { method: "POST", body: { ...article, categories, tags } });
      say(`已保存为人工标注：${saved.categories.join("、")}；下次训练会用到。`, "ok");
      if (options.onSaved) options.onSaved();
    } catch (error) {
      say(`没有保存：${error.message}`, "error");
    } finally {
      for (const button of node.querySelectorAll(".actions button")) button.disabled = false;
    }
  };
  $(".accept", node).addEventListener("click", () => save(s.categories, s.tags));
  $(".save", node).addEventListener("click", () => save(
    [...node.querySelectorAll(".categories input:checked")].map((box) => box.value),
    [...tagList.children].map((li) => li.dataset.tag)));
  if (options.onSkip) {
    $(".skip", node).hidden = false;
    $(".skip", node).addEventListener("click", options.onSkip);
  }
  container.replaceChildren(node);
}

async function suggest(event) {
  event.preventDefault();
  const result = $("#write-result");
  const button = $("#suggest");
  button.disabled = true;
  result.replaceChildren(el("p", { class: "muted" }, "正在分析…"));
  const article = {
    id: $("#article-id").value.trim() || null,
    title: $("#title").value,
    description: $("#description").value || null,
    content: $("#content").value,
  };
  try {
    const s = await call("/v1/suggest?explain=true", { method: "POST", body: article });
    editor(result, { ...s, scores: s.explain.scores, reasons: s.explain.tag_reasons },
      { title: article.title, id: () => $("#article-id").value.trim() });
  } catch (error) {
    result.replaceChildren(el("p", { class: "status error" }, `没有得到建议：${error.message}`));
  } finally {
    button.disabled = false;
  }
}

function showNext() {
  const result = $("#review-result");
  const progress = $("#queue-progress");
  if (state.next >= state.queue.length) {
    progress.textContent = state.queue.length ? "这一批审核完了。" : "没有待审核的文章。";
    result.replaceChildren();
    return;
  }
  const row = state.queue[state.next];
  progress.textContent = `第 ${state.next + 1} / ${state.queue.length} 篇`;
  const advance = () => { state.next += 1; showNext(); };
  editor(result, {
    id: row.id, _id: row._id, categories: row.suggested_categories, tags: row.suggested_tags,
    confidence: row.confidence, scores: row.all_scores, reasons: row.tag_reasons,
  }, { title: row.title || row.id, excerpt: row.excerpt, onSaved: () => setTimeout(advance, 600),
    onSkip: advance });
}

async function loadQueue() {
  const button = $("#load-queue");
  button.disabled = true;
  $("#queue-progress").textContent = "正在挑选文章…（第一次可能要一两分钟）";
  try {
    const data = await call("/v1/review?limit=50");
    state.queue = data.articles;
    state.next = 0;
    showNext();
  } catch (error) {
    $("#queue-progress").textContent = `没有加载：${error.message}`;
  } finally {
    button.disabled = false;
  }
}

function showTab(name) {
  for (const tab of ["write", "review"]) {
    $(`#tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`#${tab}`).hidden = tab !== name;
  }
}

async function start() {
  $("#api-key").value = sessionStorage.getItem(KEY) || "";
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("#api-key").value.trim());
    $("#api-key").blur();
  });
  $("#tab-write").addEventListener("click", () => showTab("write"));
  $("#tab-review").addEventListener("click", () => showTab("review"));
  $("#article-form").addEventListener("submit", suggest);
  $("#load-queue").addEventListener("click", loadQueue);
  try {
    state.model = await call("/v1/model");
    const m = state.model;
    $("#model-info").textContent = `模型 ${m.created_at.slice(0, 10)} · ${m.categories.length} 个分类`
      + (m.zero_shot ? " · 零样本" : "") + ` · ${m.workers} 个进程`;
  } catch (error) {
    $("#model-info").textContent = `模型未就绪：${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", start);
