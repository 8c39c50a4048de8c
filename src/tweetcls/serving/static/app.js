// The tweetcls web page: one tweet through POST /predict, a CSV file through POST /predict/csv.
// When the service wants an API key (401), the page asks for it, keeps it in sessionStorage
// (this tab only) and sends it as "Authorization: Bearer <key>" on its requests.
"use strict";

const LABEL_TEXT = { 0: "Not a disaster", 1: "Disaster" };
const KEY_STORAGE = "tweetcls.apiKey";
const KEY_NEEDED = "This service needs an API key: enter it to continue.";
const KEY_REFUSED = "The API key was not accepted: enter a valid key.";

let memoryKey = ""; // where sessionStorage is unavailable
let retryWithKey = null; // the action a 401 stopped, run again once a key is entered

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

async function classifyTweet() {
  const error = document.getElementById("error");
  const button = document.getElementById("classify");
  const text = document.getElementById("tweet-text").value;
  const keyword = document.getElementById("tweet-keyword").value.trim();
  show(error, false);
  if (!text.trim()) {
    error.textContent = "Type or paste a tweet first.";
    show(error, true);
    return;
  }
  button.disabled = true;
  try {
    const body = keyword ? { text, keyword } : { text };
    const response = await apiFetch(
      "/predict",
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      },
      classifyTweet,
    );
    if (!response.ok) throw new Error(await errorMessage(response));
    showPrediction(await response.json());
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
document.getElementById("key-form").addEventListener("submit", useKey);
document.getElementById("forget-key").addEventListener("click", () => storeKey(""));
show(document.getElementById("key-status"), Boolean(storedKey()));
showVersion();
