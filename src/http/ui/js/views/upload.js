// Uploads: files and whole folders, from the pickers or dropped on the page, three at a
// time, each with its own progress bar, a cancel button and, when the server refuses
// it, the reason in words (quota with the numbers, too large, a name refused and why).
// A file never silently replaces another: uploads carry `If-None-Match: *`, and an
// existing name is offered for replacement.

import * as api from '../api.js';
import { h, bytes, reason, uid } from '../ui.js';

const PARALLEL = 3;

// Why the server refused an upload, in a shop owner's words.
export function uploadFailure(error) {
  const p = error.problem || {};
  switch (error.code) {
    case 'quota-exceeded':
      return p.limit !== undefined
        ? `Not enough space: ${bytes(p.used)} of ${bytes(p.limit)} used, and this file needs ${bytes(p.attempted)}.`
        : `Not enough space: ${reason(error)}`;
    case 'file-too-large':
    case 'payload-too-large':
      return `Too large: ${reason(error)}`;
    case 'invalid-path':
      return `Name refused: ${reason(error)}`;
    case 'precondition-failed':
      return 'A file with this name is already here.';
    default:
      return reason(error);
  }
}

// Every file under a dropped folder, with its path relative to the drop.
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, relative: prefix + file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

export function uploader(slug, currentDir, onIdle) {
  const list = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const summary = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const clear = h('button', { type: 'button', hidden: true, onclick: () => {
    for (const li of [...list.children]) if (li.dataset.state !== 'active' && li.dataset.state !== 'waiting') li.remove();
    clear.hidden = true;
    panel.hidden = list.children.length === 0;
  } }, 'Clear finished');
  const panel = h('section', { class: 'upload-panel', hidden: true, 'aria-label': 'Uploads' }, summary, list, clear);
  const waiting = [];
  let active = 0;
  let uploadedSinceIdle = 0;

  function setSummary() {
    const items = [...list.children];
    const count = (s) => items.filter((li) => li.dataset.state === s).length;
    const done = count('done');
    const failed = count('failed');
    const pending = count('waiting') + count('active');
    summary.textContent = pending
      ? `Uploading: ${done} of ${items.length} done${failed ? `, ${failed} failed` : ''}`
      : `Uploads finished: ${done} done${failed ? `, ${failed} failed` : ''}`;
    clear.hidden = pending > 0;
  }

  function enqueue(file, relative) {
    const dir = currentDir();
    const path = dir ? `${dir}/${relative}` : relative;
    const bar = h('progress', { max: file.size || 1, value: 0, 'aria-label': `Upload of ${relative}` });
    const status = h('span', { class: 'state' }, 'Waiting');
    const cancel = h('button', { type: 'button', class: 'small', 'aria-label': `Cancel ${relative}` }, 'Cancel');
    const li = h('li', { dataset: { state: 'waiting', name: relative } },
      h('span', { class: 'file' }, relative), h('span', { class: 'size' }, bytes(file.size)), bar, status, cancel);
    const job = { file, path, li, bar, status, cancel, replace: false, handle: null };
    cancel.addEventListener('click', () => {
      if (job.handle) job.handle.abort();
      else finish(job, 'failed', 'Cancelled');
    });
    list.append(li);
    panel.hidden = false;
    waiting.push(job);
    setSummary();
    pump();
  }

  function finish(job, state, text) {
    const index = waiting.indexOf(job);
    if (index >= 0) waiting.splice(index, 1);
    job.li.dataset.state = state;
    job.status.textContent = text;
    job.status.className = `state ${state}`;
    job.cancel.remove();
    setSummary();
  }

  function pump() {
    while (active < PARALLEL && waiting.length) {
      const job = waiting.shift();
      active += 1;
      start(job).finally(() => {
        active -= 1;
        pump();
        if (active === 0 && waiting.length === 0 && uploadedSinceIdle) {
          uploadedSinceIdle = 0;
          onIdle();
        }
      });
    }
  }

  async function start(job) {
    job.li.dataset.state = 'active';
    job.status.textContent = 'Uploading';
    job.handle = api.upload(slug, job.path, job.file, (sent) => {
      job.bar.value = sent;
    }, job.replace ? {} : { 'If-None-Match': '*' });
    try {
      await job.handle.done;
      job.bar.value = job.bar.max;
      uploadedSinceIdle += 1;
      finish(job, 'done', 'Uploaded');
    } catch (error) {
      finish(job, 'failed', error.code === 'cancelled' ? 'Cancelled' : uploadFailure(error));
      if (error.code === 'precondition-failed') {
        job.li.append(h('button', { type: 'button', class: 'small', onclick: (event) => {
          event.target.remove();
          job.replace = true;
          job.handle = null;
          job.li.dataset.state = 'waiting';
          job.li.append(job.cancel);
          waiting.push(job);
          setSummary();
          pump();
        } }, `Replace ${job.path.split('/').pop()}`));
      }
    }
  }

  const fileInput = h('input', { type: 'file', multiple: true, class: 'visually-hidden', id: uid('upload'), tabindex: '-1', 'aria-label': 'Files to upload' });
  fileInput.addEventListener('change', () => {
    for (const file of fileInput.files) enqueue(file, file.name);
    fileInput.value = '';
  });
  const folderInput = h('input', { type: 'file', multiple: true, class: 'visually-hidden', id: uid('upload-dir'), tabindex: '-1', 'aria-label': 'A folder to upload' });
  folderInput.webkitdirectory = true;
  folderInput.addEventListener('change', () => {
    for (const file of folderInput.files) enqueue(file, file.webkitRelativePath || file.name);
    folderInput.value = '';
  });
  const pickFiles = h('span', {}, fileInput,
    h('button', { type: 'button', class: 'primary', id: 'upload-files', onclick: () => fileInput.click() }, 'Upload files'));
  const pickFolder = h('span', {}, folderInput,
    h('button', { type: 'button', id: 'upload-folder', onclick: () => folderInput.click() }, 'Upload folder'));

  function dropOn(zone) {
    let depth = 0;
    zone.addEventListener('dragenter', (event) => {
      if (!event.dataTransfer.types.includes('Files')) return;
      depth += 1;
      zone.classList.add('dropping');
    });
    zone.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) zone.classList.remove('dropping');
    });
    zone.addEventListener('dragover', (event) => {
      if (event.dataTransfer.types.includes('Files')) event.preventDefault();
    });
    zone.addEventListener('drop', async (event) => {
      event.preventDefault();
      depth = 0;
      zone.classList.remove('dropping');
      const entries = [...event.dataTransfer.items]
        .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
      if (entries.every(Boolean)) {
        const found = [];
        for (const entry of entries) await walk(entry, '', found);
        for (const { file, relative } of found) enqueue(file, relative);
      } else {
        for (const file of event.dataTransfer.files) enqueue(file, file.name);
      }
    });
  }

  return { panel, pickFiles, pickFolder, dropOn, enqueue };
}
