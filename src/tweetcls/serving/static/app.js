// The tweetcls web page: one tweet through POST /predict (and, on request, POST /explain: each
// word coloured by its attribution), a CSV file through POST /predict/csv. A classified tweet
// can be marked wrong: POST /feedback with its prediction_id and the other label (and a note).
// When the service wants an API key (401), the page asks for it, keeps it in sessionStorage
// (this tab only) and sends it as "Authorization: Bearer <key>" on its requests.
"use strict";

const LABEL_TEXT = { 0: "Not a disaster", 1: "Disaster" };
const KEY_STORAGE = "tweetcls.apiKey";
const KEY_NEEDED = "This service needs an API key: enter it to continue.";
const KEY_REFUSED = "The API key was not accepted: enter a valid key.";
const NOT_FAITHFUL =
  "No explanation for this model: its word attributions did not pass the faithfulness check.";
// A word's colour bin: |attribution| in points of probability (0-100) below 2 is neutral
// (attr-0), then 2-10, 10-25, 25 or more (attr-p1..p3 towards disaster, attr-n1..n3 away).
const BIN_EDGES = [2, 10, 25];

let memoryKey = ""; // where sessionStorage is unavailable
let retryWithKey = null; // the action a 401 stopped, run again once a key is entered
let classified = null; // the body of the tweet last classified: what "Why?" explains
let predicted = null; // the /predict answer shown: what "Wrong label?" corrects

function show(element, visible) {
  element.hidden = !visible;
}

class KeyNeeded extends Error {}

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch (_) {
    return memoryKey;
  }
}

function storeKey(key) {
  memoryKey = key;
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch (_) {
    // private mode: the key lives in memoryKey until the page is left
  }
  show(document.getElementById("key-status"), Boolean(key));
}

function askForKey(message, retry) {
  retryWithKey = retry;
  document.getElementById("key-message").textContent = message;
  show(document.getElementById("key-card"), true);
  document.getElementById("api-key").focus();
}

// fetch() with the stored key; a 401 asks for a key (again) and throws KeyNeeded.
async function apiFetch(url, options, retry) {
  const key = storedKey();
  const headers = new Headers(options.headers || {});
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401) {
    if (key) storeKey("");
    askForKey(key ? KEY_REFUSED : KEY_NEEDED, retry);
    throw new KeyNeeded(key ? "the API key was not accepted" : "an API key is needed");
  }
  return response;
}

// POST a JSON body through apiFetch (retry: the action to run again once a key is entered).
function postJson(url, body, retry) {
  const options = {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  return apiFetch(url, options, retry);
}

function useKey(event) {
  event.preventDefault();
  const input = document.getElementById("api-key");
  const key = input.value.trim();
  if (!key) {
    document.getElementById("key-message").textContent = "Enter the API key first.";
    return;
  }
  storeKey(key);
  input.value = "";
  show(document.getElementById("key-card"), false);
  const retry = retryWithKey;
  retryWithKey = null;
  if (retry) retry();
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`;
}

function showPrediction(prediction) {
  const percent = Math.round(prediction.probability * 1000) / 10;
  const label = document.getElementById("result-label");
  label.textContent = LABEL_TEXT[prediction.label];
  label.dataset.label = String(prediction.label);
  document.getElementById("result-probability-text").textContent =
    `(probability of disaster ${percent.toFixed(1)}%)`;
  const bar = document.getElementById("probability-bar");
  bar.setAttribute("aria-valuenow", String(percent));
  bar.setAttribute("aria-valuetext", `${percent.toFixed(1)} percent`);
  document.getElementById("probability-fill").style.width = `${percent}%`;
  show(document.getElementById("result"), true);
}

// |attribution| in points of probability, to one decimal as shown (its bin follows it)
function points(attribution) {
  return Math.round(Math.abs(attribution) * 1000) / 10;
}

function attributionClass(attribution) {
  if (attribution === null) return "attr-none";
  const strength = BIN_EDGES.filter((edge) => points(attribution) >= edge).length;
  if (strength === 0) return "attr-0";
  return `attr-${attribution > 0 ? "p" : "n"}${strength}`;
}

function attributionText(attribution) {
  if (attribution === null) return "not explained (past the 64th word)";
  const shown = points(attribution).toFixed(1);
  if (shown === "0.0") return "0.0 points, no effect";
  return attribution > 0
    ? `+${shown} points, towards disaster`
    : `−${shown} points, towards not a disaster`;
}

function hideExplanation() {
  const button = document.getElementById("explain");
  button.setAttribute("aria-expanded", "false");
  button.textContent = "Why? Show each word's part";
  show(document.getElementById("explanation"), false);
  show(document.getElementById("explain-error"), false);
}

function showExplanation(explanation) {
  const words = document.getElementById("explanation-words");
  words.replaceChildren();
  for (const { word, attribution } of explanation.words) {
    const span = document.createElement("span");
    span.className = `word attr ${attributionClass(attribution)}`;
    span.textContent = word;
    span.title = attributionText(attribution);
    const value = document.createElement("span"); // the value for screen readers
    value.className = "visually-hidden";
    value.textContent = ` (${span.title})`;
    words.append(span, value, " ");
  }
  const button = document.getElementById("explain");
  button.setAttribute("aria-expanded", "true");
  button.textContent = "Hide each word's part";
  show(document.getElementById("explanation"), true);
}

async function explainTweet() {
  const button = document.getElementById("explain");
  const error = document.getElementById("explain-error");
  if (button.getAttribute("aria-expanded") === "true" || !classified) {
    hideExplanation();
    return;
  }
  show(error, false);
  button.disabled = true;
  try {
    const response = await postJson("/explain", classified, explainTweet);
    if (response.status === 404) {
      error.textContent = NOT_FAITHFUL; // the route's only 404: explanations are off
      show(error, true);
      return;
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    showExplanation(await response.json());
  } catch (err) {
    error.textContent = `Could not explain: ${err.message}`;
    show(error, true);
  } finally {
    button.disabled = false;
  }
}

function setFeedbackStatus(message, failed) {
  const status = document.getElementById("feedback-status");
  status.textContent = message;
  status.classList.toggle("error", failed);
}

// The "Wrong label?" control for the prediction shown (none: hidden), with no note and no status.
function resetFeedback(prediction) {
  predicted = prediction && prediction.prediction_id ? prediction : null;
  document.getElementById("feedback-note").value = "";
  setFeedbackStatus("", false);
  const button = document.getElementById("feedback-submit");
  button.disabled = false;
  if (predicted) {
    button.textContent = `Wrong label? Mark it as “${LABEL_TEXT[1 - predicted.label]}”`;
  }
  show(document.getElementById("feedback-form"), Boolean(predicted));
}

// A binary classifier's right label, when its own is wrong, is the other one.
async function sendFeedback() {
  const target = predicted;
  if (!target) return;
  const button = document.getElementById("feedback-submit");
  const note = document.getElementById("feedback-note").value.trim();
  const body = { prediction_id: target.prediction_id, label: 1 - target.label };
  if (note) body.note = note;
  setFeedbackStatus("Sending…", false);
  button.disabled = true;
  try {
    const response = await postJson("/feedback", body, sendFeedback);
    if (response.status !== 201 && response.status !== 200) {
      throw new Error(await errorMessage(response));
    }
    const stored = await response.json();
    const name = LABEL_TEXT[stored.label];
    if (predicted !== target) return; // another tweet was classified meanwhile
    setFeedbackStatus(
      response.status === 201
        ? `Thanks: recorded as “${name}” for review.`
        : `Already recorded as “${name}”; nothing changed.`,
      false,
    );
  } catch (err) {
    if (predicted === target) {
      setFeedbackStatus(`Could not record the correction: ${err.message}`, true);
    }
  } finally {
    if (predicted === target) button.disabled = false;
  }
}

async function classifyTweet() {
  const error = document.getElementById("error");
  const button = document.getElementById("classify");
  const text = document.getElementById("tweet-text").value;
  const keyword = document.getElementById("tweet-keyword").value.trim();
  show(error, false);
  hideExplanation();
  resetFeedback(null);
  classified = null;
  if (!text.trim()) {
    error.textContent = "Type or paste a tweet first.";
    show(error, true);
    return;
  }
  button.disabled = true;
  try {
    const body = keyword ? { text, keyword } : { text };
    const response = await postJson("/predict", body, classifyTweet);
    if (!response.ok) throw new Error(await errorMessage(response));
    const prediction = await response.json();
    showPrediction(prediction);
    resetFeedback(prediction);
    classified = body;
  } catch (err) {
    show(document.getElementById("result"), false);
    error.textContent = `Could not classify: ${err.message}`;
    show(error, true);
  } finally {
    button.disabled = false;
  }
}

function downloadName(response) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(header);
  return match ? match[1] : "predictions.csv";
}

async function classifyFile() {
  const input = document.getElementById("csv-file");
  const status = document.getElementById("csv-status");
  const error = document.getElementById("csv-error");
  const button = document.getElementById("csv-submit");
  show(error, false);
  status.textContent = "";
  if (!input.files.length) {
    error.textContent = "Choose a CSV file first.";
    show(error, true);
    return;
  }
  const form = new FormData();
  form.append("file", input.files[0]);
  button.disabled = true;
  status.textContent = "Classifying…";
  try {
    const options = { method: "POST", body: form };
    const response = await apiFetch("/predict/csv", options, classifyFile);
    if (!response.ok) throw new Error(await errorMessage(response));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = downloadName(response);
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    status.textContent = `Done: ${link.download} downloaded.`;
  } catch (err) {
    status.textContent = "";
    error.textContent = `Could not classify the file: ${err.message}`;
    show(error, true);
  } finally {
    button.disabled = false;
  }
}

async function showVersion() {
  try {
    const response = await fetch("/version");
    if (!response.ok) return;
    const info = await response.json();
    document.getElementById("model-version").textContent =
      `Model ${info.version} (${info.backend}).`;
  } catch (_) {
    // the page works without it
  }
}

function onSubmit(id, action) {
  document.getElementById(id).addEventListener("submit", (event) => {
    event.preventDefault();
    action();
  });
}

onSubmit("tweet-form", classifyTweet);
onSubmit("csv-form", classifyFile);
onSubmit("feedback-form", sendFeedback);
document.getElementById("key-form").addEventListener("submit", useKey);
document.getElementById("explain").addEventListener("click", explainTweet);
document.getElementById("forget-key").addEventListener("click", () => storeKey(""));
show(document.getElementById("key-status"), Boolean(storedKey()));
showVersion();
