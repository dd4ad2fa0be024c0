// Installed by the browser tests: records the method, address and X-CSRF-Token header of
// every request the page makes through fetch or XMLHttpRequest from now on.
if (!window.__cofferRequests) {
  window.__cofferRequests = [];
  const log = window.__cofferRequests;
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    const method = (init && init.method) || (input && input.method) || 'GET';
    const headers = new Headers((init && init.headers) || (input && input.headers) || {});
    log.push({ method, url: String(input && input.url ? input.url : input), csrf: headers.get('X-CSRF-Token') });
    return realFetch.apply(this, arguments);
  };
  const open = XMLHttpRequest.prototype.open;
  const setHeader = XMLHttpRequest.prototype.setRequestHeader;
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.__coffer = { method, url: String(url), csrf: null };
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.setRequestHeader = function (name, value) {
    if (name.toLowerCase() === 'x-csrf-token') this.__coffer.csrf = value;
    return setHeader.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function () {
    log.push(this.__coffer);
    return send.apply(this, arguments);
  };
}
return true;
