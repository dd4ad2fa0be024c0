// A safe look at a stored file. The bytes are fetched, then shown from a blob: address
// the page makes itself, with a type chosen from a fixed list by the file's name and
// stored type: images, PDFs, audio and video, and text (as text, never as markup). No
// uploaded content is ever given an HTML or script type, so nothing a customer stored
// can run in Coffer's origin; everything else is offered as a download.

import * as api from '../api.js';
import { h, bytes, dialog, reason } from '../ui.js';

const MAX_PREVIEW = 25 * 1000 * 1000;
const MAX_TEXT = 1000 * 1000;

const kinds = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp',
  avif: 'image/avif', bmp: 'image/bmp', pdf: 'application/pdf',
  mp4: 'video/mp4', webm: 'video/webm', mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg', m4a: 'audio/mp4',
  txt: 'text/plain', csv: 'text/plain', md: 'text/plain', json: 'text/plain', log: 'text/plain',
  xml: 'text/plain', ini: 'text/plain', yaml: 'text/plain', yml: 'text/plain', tsv: 'text/plain',
};

// The preview type for a file, or null when it is not previewed.
export function previewType(entry) {
  const ext = entry.name.includes('.') ? entry.name.split('.').pop().toLowerCase() : '';
  if (kinds[ext]) return kinds[ext];
  const stored = (entry.content_type || '').split(';')[0].trim();
  if (stored.startsWith('text/') && stored !== 'text/html' && stored !== 'text/xml') return 'text/plain';
  return Object.values(kinds).includes(stored) ? stored : null;
}

export async function preview(slug, entry) {
  const type = previewType(entry);
  const download = h('a', { href: api.fileUrl(slug, entry.path), download: entry.name, class: 'button' }, 'Download');
  const body = h('div', { class: 'preview', role: 'region', 'aria-label': `Preview of ${entry.name}` });
  let blobUrl = null;
  const shown = dialog(entry.name, [h('p', { class: 'meta' }, `${bytes(entry.size)} · `, download), body],
    [{ value: 'close', label: 'Close', class: 'primary' }]);
  if (!type) {
    body.append(h('p', {}, 'There is no preview for this kind of file. Download it to open it.'));
  } else if (entry.size > MAX_PREVIEW) {
    body.append(h('p', {}, `This file is too large to preview (${bytes(entry.size)}). Download it to open it.`));
  } else {
    body.append(h('p', { class: 'status', role: 'status' }, 'Loading…'));
    try {
      const { data } = await api.call('GET', `/tenants/${slug}/files/${api.segments(entry.path)}`, { asBlob: true });
      body.replaceChildren();
      if (type === 'text/plain') {
        const text = await data.slice(0, MAX_TEXT).text();
        body.append(h('pre', { tabindex: '0' }, text));
        if (data.size > MAX_TEXT) body.append(h('p', { class: 'meta' }, 'The first megabyte is shown.'));
      } else {
        blobUrl = URL.createObjectURL(new Blob([data], { type }));
        if (type.startsWith('image/')) body.append(h('img', { src: blobUrl, alt: entry.name }));
        else if (type.startsWith('video/')) body.append(h('video', { src: blobUrl, controls: true }));
        else if (type.startsWith('audio/')) body.append(h('audio', { src: blobUrl, controls: true }));
        else body.append(h('iframe', { src: blobUrl, title: `PDF: ${entry.name}` }));
      }
    } catch (error) {
      body.replaceChildren(h('p', { class: 'error', role: 'alert' }, reason(error)));
    }
  }
  await shown;
  if (blobUrl) URL.revokeObjectURL(blobUrl);
}
