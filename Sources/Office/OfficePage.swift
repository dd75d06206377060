/// The evidence office's page (docs/OFFICE.md, "The office's page"), served at `/` to officers:
/// the fleet, a device's segments with their marks and verification, exports to download, and
/// live view through Media Source Extensions. One self-contained document: no script or style
/// from anywhere else, and every value from a camera is set as text, never as markup (a device
/// id or a mark's label cannot run code in an officer's browser). It reads only the API of
/// docs/office-api.yaml, so what an officer sees is what the officer's role allows.
enum OfficePage {
    static let html = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:">
    <title>bodycam office</title>
    <style>
    body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
    table { border-collapse: collapse; margin: .5em 0 1.5em; }
    th, td { border-bottom: 1px solid #ddd; padding: .3em .8em; text-align: left; }
    .alarm { color: #b00; } .ok { color: #070; } .muted { color: #777; }
    video { width: 640px; background: #000; display: block; }
    button { margin-right: .5em; }
    </style>
    </head>
    <body>
    <h1>bodycam office</h1>
    <p id="error" class="alarm"></p>
    <h2>Fleet</h2>
    <table id="fleet"><thead><tr><th>device</th><th>state</th><th>officer</th><th>alarms</th><th>storage free</th><th>last heartbeat</th><th>segments</th><th></th></tr></thead><tbody></tbody></table>
    <section id="device" hidden>
    <h2>Device <span id="device-id"></span></h2>
    <p><button id="watch">Watch live</button><button id="stop" disabled>Stop</button> <span id="latency" class="muted"></span></p>
    <video id="video" muted playsinline></video>
    <table id="segments"><thead><tr><th>segment</th><th>start (UTC)</th><th>end (UTC)</th><th>frames</th><th>marks</th><th>verified</th><th>export</th></tr></thead><tbody></tbody></table>
    </section>
    <script>
    "use strict";
    const state = { device: null, live: null, latencies: [], received: 0, appended: 0, codec: null };
    window.bodycam = state;
    function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text == null ? "" : String(text); if (cls) td.className = cls; return td; }
    function fail(what, response) { document.getElementById("error").textContent = what + ": " + (response ? response.status : "no answer"); }
    async function json(url) {
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) { fail(url, response); return null; }
      return response.json();
    }
    async function fleet() {
      const answer = await json("/v1/devices");
      if (!answer) return;
      const body = document.querySelector("#fleet tbody");
      body.replaceChildren();
      for (const device of Array.isArray(answer.devices) ? answer.devices : []) {
        // One camera's odd status must not hide the others.
        try { fleetRow(body, device); } catch (error) { cell(body.insertRow(), String(device && device.device_id), "alarm"); }
      }
    }
    function fleetRow(body, device) {
      {
        const row = body.insertRow();
        const status = (device.status && typeof device.status === "object") ? device.status : {};
        row.dataset.device = device.device_id;
        cell(row, device.device_id);
        cell(row, status.state);
        cell(row, status.officer_id);
        const alarms = Array.isArray(status.alarms) ? status.alarms.map(String) : [];
        cell(row, alarms.length ? alarms.join(", ") : "none", alarms.length ? "alarm" : "ok");
        cell(row, typeof status.storage_free_bytes === "number" ? (status.storage_free_bytes / 1e9).toFixed(1) + " GB" : "");
        cell(row, device.last_heartbeat_utc);
        cell(row, device.segments);
        const open = document.createElement("button");
        open.textContent = "Open";
        open.onclick = () => select(device.device_id);
        row.insertCell().append(open);
      }
    }
    async function select(id) {
      stopLive();
      state.device = id;
      document.getElementById("device").hidden = false;
      document.getElementById("device-id").textContent = id;
      const body = document.querySelector("#segments tbody");
      body.replaceChildren();
      const answer = await json("/v1/devices/" + encodeURIComponent(id) + "/segments");
      // An answer for a device no longer selected (a slow one) is dropped.
      if (!answer || state.device !== id) return;
      for (const segment of Array.isArray(answer.segments) ? answer.segments : []) {
        try { segmentRow(body, id, segment); } catch (error) { cell(body.insertRow(), String(segment && segment.sequence), "alarm"); }
      }
    }
    function segmentRow(body, id, segment) {
      {
        const row = body.insertRow();
        cell(row, segment.sequence);
        cell(row, segment.start_utc);
        cell(row, segment.end_utc);
        cell(row, segment.frames);
        cell(row, (Array.isArray(segment.marks) ? segment.marks : []).map(mark => ((mark && mark.label) || "mark") + " " + (mark && mark.utc)).join("; "));
        cell(row, segment.verified ? "yes" : "NO", segment.verified ? "ok" : "alarm");
        const link = document.createElement("a");
        link.textContent = "MP4";
        link.href = "/v1/devices/" + encodeURIComponent(id) + "/export/" + encodeURIComponent(String(segment.file).replace(/\\.bcseg$/, ".mp4"));
        row.insertCell().append(link);
      }
    }
    // Live view: long polls of /live; each answer's bytes go into one SourceBuffer. The latency
    // shown is now minus the capture time of the picture on screen (x-live-origin-utc + currentTime).
    async function watch() {
      const id = state.device;
      const video = document.getElementById("video");
      const media = new MediaSource();
      const session = { stopped: false, media };
      state.live = session;
      state.latencies = [];
      video.src = URL.createObjectURL(media);
      await new Promise(resolve => media.addEventListener("sourceopen", resolve, { once: true }));
      document.getElementById("watch").disabled = true;
      document.getElementById("stop").disabled = false;
      let buffer = null, next = 0, origin = null;
      while (!session.stopped) {
        let response;
        try { response = await fetch("/v1/devices/" + encodeURIComponent(id) + "/live?after=" + next, { cache: "no-store" }); }
        catch (error) { fail("live", null); break; }
        if (!response.ok) { fail("live", response); break; }
        next = Number(response.headers.get("x-live-next") || next);
        const originText = response.headers.get("x-live-origin-utc");
        if (originText) origin = Date.parse(originText);
        const bytes = await response.arrayBuffer();
        state.received += bytes.byteLength;
        if (bytes.byteLength === 0 || session.stopped) continue;
        if (!buffer) {
          const codec = response.headers.get("x-live-codec") || "avc1.64001f";
          state.codec = codec;
          buffer = media.addSourceBuffer('video/mp4; codecs="' + codec + '"');
        }
        buffer.appendBuffer(bytes);
        await new Promise(resolve => buffer.addEventListener("updateend", resolve, { once: true }));
        state.appended += 1;
        // Trim what is far behind, and keep to the live edge.
        const ranges = buffer.buffered;
        if (ranges.length) {
          const end = ranges.end(ranges.length - 1);
          if (video.currentTime < ranges.start(0) || end - video.currentTime > 3) video.currentTime = Math.max(ranges.start(0), end - 0.5);
          if (ranges.start(0) < end - 30 && !buffer.updating) {
            buffer.remove(0, end - 20);
            await new Promise(resolve => buffer.addEventListener("updateend", resolve, { once: true }));
          }
        }
        // Not awaited: play() settles only once there is a picture to show.
        if (video.paused) video.play().catch(() => {});
        if (origin != null && video.currentTime > 0) {
          const latency = (Date.now() - (origin + video.currentTime * 1000)) / 1000;
          state.latencies.push(latency);
          document.getElementById("latency").textContent = "glass to glass " + latency.toFixed(2) + " s";
        }
      }
    }
    function stopLive() {
      if (state.live) state.live.stopped = true;
      state.live = null;
      document.getElementById("watch").disabled = false;
      document.getElementById("stop").disabled = true;
    }
    document.getElementById("watch").onclick = () => watch().catch(error => {
      document.getElementById("error").textContent = "live: " + error;
      stopLive();
    });
    document.getElementById("stop").onclick = () => stopLive();
    fleet();
    setInterval(fleet, 10000);
    </script>
    </body>
    </html>
    """
}
