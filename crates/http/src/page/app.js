// The auscout page: recognise a file, listen through the microphone, manage
// the tracks. Plain JavaScript, no build step; every URL is relative so the
// page also works behind a path prefix. Text from the server (track names)
// is only ever set as textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);

/** An error reply of the API: {"error":{"code","message"}}. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the server.');
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const err = (body && body.error) || {};
    throw new ApiError(response.status, err.code || 'error',
      err.message || `The server answered ${response.status}.`);
  }
  return body;
}

// ---- formatting ------------------------------------------------------------

function clock(seconds) {
  const s = Math.max(0, seconds);
  const m = Math.floor(s / 60);
  const rest = (s - 60 * m).toFixed(1).padStart(4, '0');
  return `${m}:${rest}`;
}

function bytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The card of a lookup reply: the best match, or a clear "no match". */
function matchCard(reply, { live = false } = {}) {
  const card = el('article', 'card');
  const best = reply.matches[0];
  if (!best) {
    card.classList.add('nomatch');
    card.append(el('h3', 'card-title', 'No match'));
    card.append(el('p', 'card-detail',
      `Nothing in the index sounds like these ${reply.duration_s.toFixed(1)} s of audio.`));
    card.append(el('p', 'card-meta', `${Math.round(reply.timings_ms.total)} ms`));
    return card;
  }
  card.classList.add('match');
  card.dataset.trackId = String(best.id);
  card.append(el('p', 'card-label', live ? 'Now playing' : 'Match'));
  card.append(el('h3', 'card-title', best.descr));
  // Live: where the track is now (the clip's end); a file: where it starts.
  const at = live ? best.offset_s + reply.duration_s : best.offset_s;
  const facts = el('dl', 'facts');
  const fact = (name, value) => {
    const row = el('div');
    row.append(el('dt', '', name), el('dd', '', value));
    facts.append(row);
  };
  fact(live ? 'Position' : 'Starts at', clock(at));
  fact('Score', `${Math.round(best.score * 100)} %`);
  fact('Track id', String(best.id));
  fact('Time', `${Math.round(reply.timings_ms.total)} ms`);
  card.append(facts);
  const meter = el('meter', 'score');
  meter.min = 0;
  meter.max = 1;
  meter.value = best.score;
  meter.setAttribute('aria-label', 'Score');
  card.append(meter);
  if (reply.matches.length > 1) {
    const others = el('p', 'card-meta',
      'Also: ' + reply.matches.slice(1).map((m) => m.descr).join(', '));
    card.append(others);
  }
  return card;
}

function show(container, node) {
  container.replaceChildren(node);
}

// ---- health ----------------------------------------------------------------

async function checkHealth() {
  const line = $('health');
  try {
    const h = await api('health');
    line.textContent = `Connected · index “${h.key}” · ${h.tracks} tracks`;
    line.className = 'health ok';
  } catch (e) {
    line.textContent = `Server unavailable: ${e.message}`;
    line.className = 'health bad';
  }
}

// ---- recognise a file --------------------------------------------------------

async function recognise(file) {
  const status = $('file-status');
  const result = $('file-result');
  status.textContent = `Looking up ${file.name}…`;
  result.replaceChildren();
  monitorRun += 1;
  $('timeline').hidden = true;
  const form = new FormData();
  form.append('audio', file, file.name);
  try {
    const reply = await api('v1/lookup', { method: 'POST', body: form });
    loadStats();
    if (reply.duration_s >= LONG_S) {
      // A recording, not a clip: what played when says more than one match.
      status.textContent = `${file.name} is a recording of more than ${LONG_S} s.`;
      monitorFile(file);
      return;
    }
    status.textContent = reply.matches.length
      ? `${file.name}: found in ${Math.round(reply.timings_ms.total)} ms.`
      : `${file.name}: no match.`;
    show(result, matchCard(reply));
  } catch (e) {
    status.textContent = `${file.name}: ${e.message}`;
  }
}

// ---- what played when in a long file ---------------------------------------

/** A file with at least this many seconds is also monitored (a show, a set). */
const LONG_S = 20;
let monitorRun = 0;

/** One segment of POST /v1/monitor as a list item. */
function segmentItem(s) {
  const item = el('li', 'segment');
  item.dataset.trackId = String(s.id);
  item.append(el('span', 'segment-time', `${clock(s.stream_start_s)} – ${clock(s.stream_end_s)}`));
  item.append(el('span', 'segment-track', s.track));
  let detail = `from ${clock(s.track_start_s)} · ${Math.round(s.score * 100)} %`;
  if (s.speed) detail += ` · speed ${s.speed.toFixed(3)}`;
  item.append(el('span', 'segment-detail', detail));
  return item;
}

/** Streams the file through POST /v1/monitor (JSON Lines): each segment
 *  appears as soon as the server has heard it end. */
async function monitorFile(file) {
  const run = ++monitorRun;
  const box = $('timeline');
  const list = $('segments');
  const status = $('timeline-status');
  box.hidden = false;
  list.replaceChildren();
  status.textContent = `Following ${file.name}…`;
  const form = new FormData();
  form.append('audio', file, file.name);
  let count = 0;
  const handle = (line) => {
    if (run !== monitorRun || !line.trim()) return;
    const v = JSON.parse(line);
    if (v.error) throw new ApiError(0, v.error.code, v.error.message);
    if (v.done) {
      status.textContent = count
        ? `${count} ${count === 1 ? 'segment' : 'segments'} in ${clock(v.done.duration_s)} of audio `
          + `(${(v.done.timings_ms.total / 1000).toFixed(1)} s).`
        : `No indexed track in these ${clock(v.done.duration_s)} of audio.`;
      return;
    }
    count += 1;
    list.append(segmentItem(v));
    status.textContent = `Following ${file.name}… ${count} so far`;
  };
  try {
    const response = await fetch('v1/monitor', {
      method: 'POST',
      headers: { Accept: 'application/x-ndjson' },
      body: form,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      const err = (body && body.error) || {};
      throw new ApiError(response.status, err.code || 'error',
        err.message || `The server answered ${response.status}.`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop();
      lines.forEach(handle);
    }
    handle(pending + decoder.decode());
  } catch (e) {
    if (run === monitorRun) status.textContent = `${file.name}: ${e.message}`;
  }
}

function setUpDrop() {
  const drop = $('drop');
  const input = $('file');
  input.addEventListener('change', () => {
    if (input.files && input.files[0]) recognise(input.files[0]);
    input.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (file) recognise(file);
  });
}

// ---- listen through the microphone -----------------------------------------

/** Seconds of audio each query sends (the most recent ones). */
const WINDOW_S = 8;
/** The first query waits for this much audio. */
const FIRST_S = 3;
/** A query at most this often. */
const EVERY_MS = 1500;
/** Audio is sent at about this rate (the hash needs 6 kHz; a little more
 *  leaves the server's resampler room). */
const TARGET_RATE = 12000;

/** 16-bit mono PCM WAV of `samples` (floats in [-1, 1]). */
function wav(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buffer);
  const text = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
  text(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  text(36, 'data');
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + 2 * i, s < 0 ? s * 32768 : s * 32767, true);
  }
  return new Blob([buffer], { type: 'audio/wav' });
}

/** The last WINDOW_S seconds of microphone audio, decimated to ~TARGET_RATE. */
class Recorder {
  constructor(inputRate) {
    this.factor = Math.max(1, Math.floor(inputRate / TARGET_RATE));
    this.rate = Math.round(inputRate / this.factor);
    this.ring = new Float32Array(this.rate * WINDOW_S);
    this.written = 0;
    this.acc = 0;
    this.accCount = 0;
  }

  push(input) {
    for (let i = 0; i < input.length; i++) {
      // Averaging `factor` samples is a crude low-pass; the server's
      // resampler does the real one down to 6 kHz.
      this.acc += input[i];
      this.accCount += 1;
      if (this.accCount === this.factor) {
        this.ring[this.written % this.ring.length] = this.acc / this.factor;
        this.written += 1;
        this.acc = 0;
        this.accCount = 0;
      }
    }
  }

  seconds() {
    return Math.min(this.written, this.ring.length) / this.rate;
  }

  latest() {
    const n = Math.min(this.written, this.ring.length);
    const out = new Float32Array(n);
    const start = this.written - n;
    for (let i = 0; i < n; i++) out[i] = this.ring[(start + i) % this.ring.length];
    return out;
  }
}

let session = null;

async function startListening() {
  const status = $('listen-status');
  const button = $('listen');
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status.textContent = 'This browser cannot record here (the page needs HTTPS or localhost).';
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    status.textContent = `No microphone: ${e.message}`;
    return;
  }
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  // ScriptProcessorNode: deprecated but everywhere, and needs no extra file.
  const processor = context.createScriptProcessor(4096, 1, 1);
  const recorder = new Recorder(context.sampleRate);
  processor.onaudioprocess = (e) => recorder.push(e.inputBuffer.getChannelData(0));
  source.connect(processor);
  processor.connect(context.destination);
  session = { stream, context, recorder, timer: null, busy: false, misses: 0, lastId: null };
  button.textContent = 'Stop';
  button.setAttribute('aria-pressed', 'true');
  status.textContent = 'Listening…';
  session.timer = setInterval(() => query(session), EVERY_MS);
}

function stopListening() {
  if (!session) return;
  clearInterval(session.timer);
  session.stream.getTracks().forEach((t) => t.stop());
  session.context.close();
  session = null;
  $('listen').textContent = 'Listen';
  $('listen').setAttribute('aria-pressed', 'false');
  $('listen-status').textContent = 'Stopped.';
}

async function query(s) {
  if (s.busy || s !== session) return;
  const heard = s.recorder.seconds();
  if (heard < FIRST_S) {
    $('listen-status').textContent = `Listening… ${heard.toFixed(1)} s`;
    return;
  }
  s.busy = true;
  try {
    const reply = await api('v1/lookup', {
      method: 'POST',
      headers: { 'Content-Type': 'audio/wav' },
      body: wav(s.recorder.latest(), s.recorder.rate),
    });
    if (s !== session) return;
    const best = reply.matches[0];
    if (best) {
      s.misses = 0;
      show($('listen-result'), matchCard(reply, { live: true }));
      $('listen-status').textContent = 'Listening…';
      if (best.id !== s.lastId) {
        s.lastId = best.id;
        const item = el('li', '', `${new Date().toLocaleTimeString()} — ${best.descr}`);
        $('listen-log').prepend(item);
      }
    } else {
      s.misses += 1;
      // One miss can be a pause or a transition: say so only after two.
      if (s.misses >= 2) {
        s.lastId = null;
        show($('listen-result'), matchCard(reply, { live: true }));
      }
      $('listen-status').textContent = 'Listening… no match yet';
    }
  } catch (e) {
    if (s === session) $('listen-status').textContent = `Listening… ${e.message}`;
  } finally {
    s.busy = false;
  }
}

// ---- tracks ----------------------------------------------------------------

let nextCursor = null;
let writesNeedKey = false;

function apiKey() {
  return $('api-key').value.trim();
}

async function loadStats() {
  try {
    const s = await api('v1/stats');
    $('stat-tracks').textContent = s.tracks.toLocaleString();
    $('stat-frames').textContent = s.frames.toLocaleString();
    $('stat-memory').textContent = bytes(s.memory_bytes);
    $('stat-lookups').textContent = s.lookups_served.toLocaleString();
    writesNeedKey = s.api_key_required;
    updateDeleteButtons();
  } catch (e) {
    $('tracks-status').textContent = e.message;
  }
}

function updateDeleteButtons() {
  const allowed = !writesNeedKey || apiKey() !== '';
  document.querySelectorAll('#tracks button.delete').forEach((b) => { b.hidden = !allowed; });
}

function trackRow(t) {
  const row = el('tr');
  row.dataset.trackId = String(t.id);
  row.append(el('td', 'num', String(t.id)), el('td', 'descr', t.descr), el('td', 'num', clock(t.duration_s)));
  const cell = el('td', 'actions');
  const del = el('button', 'delete', 'Delete');
  del.type = 'button';
  del.setAttribute('aria-label', `Delete ${t.descr}`);
  del.addEventListener('click', () => deleteTrack(t, row));
  cell.append(del);
  row.append(cell);
  return row;
}

async function loadTracks(reset) {
  const body = $('tracks').querySelector('tbody');
  const status = $('tracks-status');
  if (reset) nextCursor = null;
  const params = new URLSearchParams({ count: '50' });
  if (nextCursor) params.set('cursor', nextCursor);
  try {
    const page = await api(`v1/tracks?${params}`);
    if (reset) body.replaceChildren();
    page.tracks.forEach((t) => body.append(trackRow(t)));
    nextCursor = page.next_cursor;
    $('tracks-more').hidden = !nextCursor;
    status.textContent = page.total === 0 ? 'The index has no tracks yet.' : '';
    updateDeleteButtons();
  } catch (e) {
    status.textContent = e.message;
  }
}

async function deleteTrack(t, row) {
  if (!window.confirm(`Delete “${t.descr}” (id ${t.id}) from the index?`)) return;
  const headers = {};
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  try {
    await api(`v1/tracks/${t.id}`, { method: 'DELETE', headers });
    row.remove();
    $('tracks-status').textContent = `Deleted ${t.descr}.`;
    loadStats();
  } catch (e) {
    $('tracks-status').textContent = e.status === 401
      ? 'The server needs its API key to delete: enter it above.'
      : e.message;
  }
}

// ---- start -----------------------------------------------------------------

setUpDrop();
$('listen').addEventListener('click', () => (session ? stopListening() : startListening()));
$('tracks-more').addEventListener('click', () => loadTracks(false));
$('tracks-refresh').addEventListener('click', () => { loadStats(); loadTracks(true); });
$('api-key').addEventListener('input', updateDeleteButtons);
checkHealth();
setInterval(checkHealth, 10000);
loadStats();
loadTracks(true);
