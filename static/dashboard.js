// SHMS live operations dashboard: an example front end that uses only SHMS's public API.
//
//   1. Sign in        POST /oauth/token, password grant         -> access and refresh token
//   2. Departments    query departments, viewer                  -> the department picker
//   3. Equipment      query departmentEquipmentStatus            -> the board
//                     subscription equipmentStatusChanged        -> live changes to it
//   4. Appointments   query appointments(filter: {departmentId, from, to}) -> today's list
//                     subscription appointmentChanged            -> live changes to it
//
// Queries and sign-in use fetch over HTTP; subscriptions share one WebSocket through the
// standard graphql-ws client. No framework: the DOM is built with createElement/textContent
// (never innerHTML, so no text from the API is ever parsed as HTML).

// graphql-ws's browser build, loaded by dashboard.html, defines this global. With a bundler,
// write `import { createClient } from "graphql-ws";` instead.
const { createClient } = window.graphqlWs;

// ---- Endpoints ---------------------------------------------------------------------------
// Relative to this page, so the dashboard works on any host, port or path prefix.
const TOKEN_URL = new URL("oauth/token", document.baseURI);
const GRAPHQL_URL = new URL("graphql", document.baseURI);
const SOCKET_URL = new URL(GRAPHQL_URL);
SOCKET_URL.protocol = GRAPHQL_URL.protocol === "https:" ? "wss:" : "ws:";

// ---- GraphQL documents ---------------------------------------------------------------------
const START = `query Start {
  viewer { subject roles departmentId }
  departments(first: 100) { nodes { id code name } }
}`;

const EQUIPMENT_BOARD = `query EquipmentBoard($departmentId: ID!) {
  departmentEquipmentStatus(departmentId: $departmentId) { id name equipmentType status updatedAt }
}`;

const EQUIPMENT_CHANGES = `subscription EquipmentChanges($departmentId: ID!) {
  equipmentStatusChanged(departmentId: $departmentId) {
    change equipmentId at
    equipment { id name equipmentType status departmentId updatedAt }
  }
}`;

const APPOINTMENT_FIELDS = `fragment AppointmentRow on Appointment {
  id startAt endAt status reason departmentId updatedAt
  patient { firstName lastName }
  doctor { firstName lastName }
}`;

const TODAYS_APPOINTMENTS = `query TodaysAppointments(
  $departmentId: ID!, $from: DateTime!, $to: DateTime!, $after: String
) {
  appointments(filter: {departmentId: $departmentId, from: $from, to: $to}, first: 100, after: $after) {
    nodes { ...AppointmentRow }
    pageInfo { hasNextPage endCursor }
  }
}
${APPOINTMENT_FIELDS}`;

const APPOINTMENT_CHANGES = `subscription AppointmentChanges($departmentId: ID!) {
  appointmentChanged(departmentId: $departmentId) {
    change appointmentId at
    appointment { ...AppointmentRow }
  }
}
${APPOINTMENT_FIELDS}`;

// ---- Page elements -------------------------------------------------------------------------
const $ = (selector) => document.querySelector(selector);
const signInForm = $("#sign-in");
const signOutButton = $("#sign-out");
const board = $("#board");
const departmentPicker = $("#department");
const equipmentBody = $("#equipment tbody");
const appointmentBody = $("#appointments tbody");
const appointmentCount = $("#appointment-count");
const changeList = $("#changes");
const connection = $("#connection");
const viewerLabel = $("#viewer");
const message = $("#message");

function say(text, kind = "info") {
  message.textContent = text;
  message.dataset.kind = kind;
}

// ---- Signing in and tokens -----------------------------------------------------------------
// Tokens are kept in memory only: a reload signs out, and nothing else on this origin can
// read them from storage.
let session = null; // { accessToken, refreshToken, expiresAt } while signed in
let refreshing = null; // the refresh in flight, if any

async function requestToken(form) {
  const response = await fetch(TOKEN_URL, { method: "POST", body: new URLSearchParams(form) });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.error_description || body.error || `sign-in failed (${response.status})`);
  }
  return {
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    expiresAt: Date.now() + body.expires_in * 1000,
  };
}

// A current access token, refreshed a minute before it expires. Refresh tokens rotate and
// each works once (SHMS revokes the whole family when one is reused), so every caller shares
// the one refresh in flight instead of starting its own.
async function accessToken() {
  if (session === null) throw new Error("Signed out");
  if (Date.now() < session.expiresAt - 60_000) return session.accessToken;
  refreshing ??= requestToken({ grant_type: "refresh_token", refresh_token: session.refreshToken })
    .then((fresh) => {
      session = fresh;
      return fresh.accessToken;
    })
    .catch((error) => {
      signOut(`Your session ended (${error.message}); please sign in again.`);
      throw error;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

// ---- Queries over HTTP ---------------------------------------------------------------------
async function graphql(query, variables = {}) {
  const response = await fetch(GRAPHQL_URL, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Bearer ${await accessToken()}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  // An answer may carry data and errors together: a field this user may not see is null with
  // a FORBIDDEN error at its path, and the rest is still worth showing.
  for (const error of body.errors ?? []) {
    console.warn("GraphQL:", error.message, error.path ?? "", error.extensions ?? {});
  }
  if (!body.data) throw new Error(body.errors?.[0]?.message ?? `HTTP ${response.status}`);
  return body.data;
}

// ---- Subscriptions over one WebSocket ------------------------------------------------------
let socket = null; // the graphql-ws client while signed in
let connectedBefore = false;

function connect() {
  connectedBefore = false;
  socket = createClient({
    url: SOCKET_URL.href,
    lazy: false, // one connection for the whole session, not one per department shown
    // Browsers cannot set headers on a WebSocket: SHMS reads the token from the
    // connection_init payload. A function, so each (re)connection sends a current token.
    connectionParams: async () => ({ Authorization: `Bearer ${await accessToken()}` }),
    retryAttempts: Infinity, // a dashboard on a wall should come back by itself
    shouldRetry: () => session !== null,
    on: {
      connecting: () => showConnection("connecting"),
      connected: () => {
        showConnection("live");
        // After a reconnection, events sent while we were away are lost: read afresh.
        if (connectedBefore && view !== null) loadDepartment(view);
        connectedBefore = true;
      },
      closed: () => showConnection(session === null ? "offline" : "reconnecting"),
    },
  });
}

function showConnection(state) {
  connection.dataset.state = state;
  connection.textContent = state;
}

// Runs one subscription for a view; the returned function ends it. Events for a view no
// longer shown (the user picked another department meanwhile) are dropped.
function subscribe(forView, query, onData) {
  return socket.subscribe(
    { query, variables: { departmentId: forView.departmentId } },
    {
      next: (result) => {
        if (view !== forView) return;
        if (result.errors) say(result.errors[0].message, "error");
        if (result.data) onData(result.data);
      },
      error: (error) => say(`Live updates stopped: ${describe(error)}`, "error"),
      complete: () => {},
    },
  );
}

function describe(error) {
  if (Array.isArray(error)) return error.map((e) => e.message).join("; "); // GraphQL errors
  if (error && "code" in error) return `connection closed (${error.code} ${error.reason})`;
  return String(error?.message ?? error);
}

// ---- One department's view -----------------------------------------------------------------
// Rows are kept by id in Maps and the tables re-drawn from them. Every row carries its
// updatedAt, so an event older than what is shown (it may arrive after a fresher read) is
// ignored.
let view = null; // { departmentId, equipment: Map, appointments: Map, day, stop: [] }

function showDepartment(departmentId) {
  if (view?.departmentId === departmentId) return;
  view?.stop.forEach((stop) => stop());
  changeList.replaceChildren();
  view = null;
  if (!departmentId) {
    drawEquipment(new Map());
    drawAppointments(new Map());
    return;
  }
  const next = { departmentId, equipment: new Map(), appointments: new Map(), day: null, stop: [] };
  view = next;
  // Subscribe first, then read: a change made between the two still reaches us.
  next.stop.push(subscribe(next, EQUIPMENT_CHANGES, onEquipmentChange));
  next.stop.push(subscribe(next, APPOINTMENT_CHANGES, onAppointmentChange));
  loadDepartment(next);
}

async function loadDepartment(forView) {
  const day = today();
  try {
    const [devices, appointments] = await Promise.all([
      graphql(EQUIPMENT_BOARD, { departmentId: forView.departmentId }),
      allAppointments(forView.departmentId, day),
    ]);
    if (view !== forView) return; // another department was picked meanwhile
    forView.day = day;
    forView.equipment = new Map();
    forView.appointments = new Map();
    for (const device of devices.departmentEquipmentStatus) keepNewer(forView.equipment, device);
    for (const appointment of appointments) keepNewer(forView.appointments, appointment);
    drawEquipment(forView.equipment);
    drawAppointments(forView.appointments);
    board.dataset.loaded = forView.departmentId; // the view is complete and live
    say("");
  } catch (error) {
    say(`Could not load the department: ${error.message}`, "error");
  }
}

// Today's appointments, page by page (a page holds at most 100).
async function allAppointments(departmentId, day) {
  const found = [];
  let after = null;
  do {
    const { appointments } = await graphql(TODAYS_APPOINTMENTS, { departmentId, ...day, after });
    found.push(...appointments.nodes);
    after = appointments.pageInfo.hasNextPage ? appointments.pageInfo.endCursor : null;
  } while (after !== null);
  return found;
}

// Midnight to midnight in this browser's time zone, as instants the API compares against.
function today() {
  const from = new Date();
  from.setHours(0, 0, 0, 0);
  const to = new Date(from);
  to.setDate(to.getDate() + 1);
  return { from: from.toISOString(), to: to.toISOString() };
}

// Adds or replaces a row unless the one shown is newer; returns whether it changed.
function keepNewer(rows, row) {
  const shown = rows.get(row.id);
  if (shown && Date.parse(shown.updatedAt) > Date.parse(row.updatedAt)) return false;
  rows.set(row.id, row);
  return true;
}

function onEquipmentChange({ equipmentStatusChanged: event }) {
  const device = event.equipment;
  let changed;
  if (device === null || device.departmentId !== view.departmentId) {
    // Moved to another department, or no longer visible to this user: off the board.
    changed = view.equipment.delete(event.equipmentId);
  } else {
    changed = keepNewer(view.equipment, device);
  }
  if (changed) drawEquipment(view.equipment, event.equipmentId);
  logChange(event.at, `${device?.name ?? "A device"}: ${words(event.change)}`, device?.status);
}

function onAppointmentChange({ appointmentChanged: event }) {
  const appointment = event.appointment;
  const day = view.day ?? today();
  const start = appointment ? Date.parse(appointment.startAt) : NaN;
  let changed;
  if (
    appointment === null ||
    appointment.departmentId !== view.departmentId ||
    !(start >= Date.parse(day.from) && start < Date.parse(day.to))
  ) {
    changed = view.appointments.delete(event.appointmentId); // not (or no longer) today's
  } else {
    changed = keepNewer(view.appointments, appointment);
  }
  if (changed) drawAppointments(view.appointments, event.appointmentId);
  const when = appointment ? ` at ${time(appointment.startAt)}` : "";
  logChange(event.at, `Appointment${when}: ${words(event.change)}`, appointment?.status);
}

// A dashboard stays open for days: at midnight, today's list becomes the new day's.
setInterval(() => {
  if (view?.day && view.day.from !== today().from) loadDepartment(view);
}, 60_000);

// ---- Drawing -------------------------------------------------------------------------------
function drawEquipment(rows, highlight = null) {
  const sorted = [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));
  equipmentBody.replaceChildren(
    ...sorted.map((device) =>
      row(
        { equipmentId: device.id, status: device.status },
        [device.name, device.equipmentType, badge(device.status), since(device.updatedAt)],
        device.id === highlight,
      ),
    ),
  );
}

function drawAppointments(rows, highlight = null) {
  const sorted = [...rows.values()].sort((a, b) => a.startAt.localeCompare(b.startAt));
  appointmentBody.replaceChildren(
    ...sorted.map((appointment) =>
      row(
        { appointmentId: appointment.id, status: appointment.status },
        [
          `${time(appointment.startAt)}–${time(appointment.endAt)}`,
          person(appointment.patient),
          person(appointment.doctor),
          appointment.reason ?? "",
          badge(appointment.status),
        ],
        appointment.id === highlight,
      ),
    ),
  );
  appointmentCount.textContent = `(${rows.size})`;
}

function row(data, cells, highlight) {
  const tr = document.createElement("tr");
  Object.assign(tr.dataset, data);
  if (highlight) tr.classList.add("changed");
  for (const content of cells) {
    const td = document.createElement("td");
    td.append(content); // a string becomes text, never markup
    tr.append(td);
  }
  return tr;
}

function badge(status) {
  const span = document.createElement("span");
  span.className = `status status-${status.toLowerCase()}`;
  span.textContent = words(status);
  return span;
}

function logChange(at, text, status) {
  const item = document.createElement("li");
  item.textContent = `${time(at)} ${text}${status ? ` → ${words(status)}` : ""}`;
  changeList.prepend(item);
  while (changeList.children.length > 20) changeList.lastElementChild.remove();
}

// A person the user may not see comes back as null (with a FORBIDDEN error): shown as "—".
const person = (p) => (p ? `${p.firstName ?? ""} ${p.lastName ?? ""}`.trim() || "—" : "—");
const words = (value) => value.replaceAll("_", " ").toLowerCase();
const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
// A time today; a date and time for anything older.
function since(iso) {
  const at = new Date(iso);
  if (at.toDateString() === new Date().toDateString()) return time(iso);
  return at.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

// ---- Signing in and out --------------------------------------------------------------------
signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(signInForm);
  try {
    session = await requestToken({
      grant_type: "password",
      username: form.get("username"),
      password: form.get("password"),
    });
  } catch (error) {
    say(error.message, "error");
    return;
  }
  signInForm.reset();
  signInForm.hidden = true;
  signOutButton.hidden = false;
  board.hidden = false;
  say("");
  connect();
  try {
    const { viewer, departments } = await graphql(START);
    viewerLabel.textContent = `${form.get("username")} (${viewer.roles.join(", ")})`;
    departmentPicker.replaceChildren(departmentPicker.options[0]);
    for (const department of departments.nodes) {
      departmentPicker.append(new Option(`${department.name} (${department.code})`, department.id));
    }
    // Staff tied to a department start on it.
    if (departments.nodes.some((d) => d.id === viewer.departmentId)) {
      departmentPicker.value = viewer.departmentId;
      showDepartment(viewer.departmentId);
    }
  } catch (error) {
    say(`Could not load departments: ${error.message}`, "error");
  }
});

departmentPicker.addEventListener("change", () => showDepartment(departmentPicker.value));

signOutButton.addEventListener("click", () => signOut("Signed out."));

function signOut(text) {
  session = null;
  showDepartment("");
  socket?.dispose();
  socket = null;
  showConnection("offline");
  viewerLabel.textContent = "";
  departmentPicker.replaceChildren(departmentPicker.options[0]);
  delete board.dataset.loaded;
  board.hidden = true;
  signOutButton.hidden = true;
  signInForm.hidden = false;
  say(text);
}
