// The console's shell: login, then a hash router over three views.
//   #/images            images visible to the caller
//   #/image/<id>[/<seq>] one image, as of a seq of its history
//   #/live              the change feed
//   #/audit             head and chain verification
import * as api from './api.js';
import { h, replace } from './dom.js';
import { renderImages, renderImage } from './image.js';
import { renderLive } from './live.js';
import { renderAudit } from './audit.js';

const main = document.getElementById('main');
const loginForm = document.getElementById('login');
let leave = null;  // cleanup of the current view (closes the live feed)

function showMode() {
  const mode = loginForm.elements.mode.value;
  for (const el of loginForm.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== mode;
}

async function onLogin(ev) {
  ev.preventDefault();
  const f = loginForm.elements;
  const error = document.getElementById('login-error');
  error.textContent = '';
  if (f.mode.value === 'admin') api.login({ kind: 'admin', token: f.token.value.trim() });
  else api.login({ kind: 'key', id: f.access_key_id.value.trim(), secret: f.access_key_secret.value.trim() });
  try {
    await api.getJson('/v1/head');  // any authenticated read proves the credentials
  } catch (e) {
    api.logout();
    error.textContent = e.message;
    return;
  }
  loginForm.reset();
  showMode();
  document.getElementById('who').textContent = `signed in as ${api.principal()}`;
  document.getElementById('nav').hidden = false;
  document.getElementById('logout').hidden = false;
  if (!location.hash || location.hash === '#/') location.hash = '#/images';
  else route();
}

function onLogout() {
  api.logout();
  location.reload();  // drops every credential and open socket with the page
}

async function route() {
  if (leave) leave();
  leave = null;
  if (!api.loggedIn()) {
    replace(main, loginForm);
    return;
  }
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#/${parts[0] === 'image' ? 'images' : parts[0]}`);
  }
  const view = h('section', { class: 'view' });
  replace(main, view);
  try {
    if (parts[0] === 'image' && parts[1]) leave = await renderImage(view, parts[1], parts[2] ? Number(parts[2]) : null);
    else if (parts[0] === 'live') leave = await renderLive(view);
    else if (parts[0] === 'audit') leave = await renderAudit(view);
    else leave = await renderImages(view);
  } catch (e) {
    replace(view, h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

loginForm.addEventListener('change', showMode);
loginForm.addEventListener('submit', onLogin);
document.getElementById('logout').addEventListener('click', onLogout);
window.addEventListener('hashchange', route);
route();
