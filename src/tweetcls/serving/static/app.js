// The tweetcls web page: one tweet through POST /predict, a CSV file through POST /predict/csv.
"use strict";

const LABEL_TEXT = { 0: "Not a disaster", 1: "Disaster" };

function show(element, visible) {
  element.hidden = !visible;
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

async function classifyTweet(event) {
  event.preventDefault();
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
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
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

async function classifyFile(event) {
  event.preventDefault();
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
    const response = await fetch("/predict/csv", { method: "POST", body: form });
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

document.getElementById("tweet-form").addEventListener("submit", classifyTweet);
document.getElementById("csv-form").addEventListener("submit", classifyFile);
showVersion();
