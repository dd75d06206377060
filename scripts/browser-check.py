#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (its websocket, with the standard library
only): opens the office's page and runs one check in it, printing the result as JSON.

    browser-check.py PORT_FILE URL CHECK [SECONDS]

PORT_FILE is Chromium's DevToolsActivePort (in its user data folder); CHECK is `page` (the page
loads, the fleet shows, live view plays: returns rows, latencies, the export's status and length
in a <video> element), `load` (only whether the page loaded, and the error shown on it) or
`video:NAME,NAME…` (URL is a folder's file:// address: each MP4 file NAME in a <video> element,
its duration, and seeks to 25, 50 and 75 %: where each landed and the picture shown there, as
base64 grey)."""
import base64, json, os, socket, struct, sys, time

def connect(port_file):
    deadline = time.time() + 30
    while not os.path.exists(port_file):
        if time.time() > deadline:
            sys.exit("browser-check: Chromium wrote no DevToolsActivePort")
        time.sleep(0.1)
    while True:
        lines = open(port_file).read().split("\n")
        if len(lines) >= 2 and lines[1]:
            break
        time.sleep(0.1)
    port, path = int(lines[0]), lines[1]
    # The browser's target: make a page, then talk to the page's own socket.
    sock = handshake(port, path)
    send(sock, {"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}})
    target = receive_reply(sock, 1)["result"]["targetId"]
    sock.close()
    return handshake(port, "/devtools/page/" + target)

def handshake(port, path):
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    if b" 101 " not in answer.split(b"\r\n")[0]:
        sys.exit("browser-check: the DevTools socket refused: %r" % answer[:80])
    return sock

def send(sock, message):
    data = json.dumps(message).encode()
    header = bytes([0x81])
    mask = os.urandom(4)
    if len(data) < 126:
        header += bytes([0x80 | len(data)])
    elif len(data) < 65536:
        header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

def read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            sys.exit("browser-check: the DevTools socket closed")
        data += chunk
    return data

def receive(sock):
    message = b""
    while True:
        first, second = read_exact(sock, 2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack(">H", read_exact(sock, 2))[0]
        elif length == 127:
            length = struct.unpack(">Q", read_exact(sock, 8))[0]
        message += read_exact(sock, length)
        if first & 0x80:
            return json.loads(message)

def receive_reply(sock, wanted):
    while True:
        message = receive(sock)
        if message.get("id") == wanted:
            return message

def evaluate(sock, ident, expression, timeout):
    send(sock, {"id": ident, "method": "Runtime.evaluate",
                "params": {"expression": expression, "awaitPromise": True, "returnByValue": True, "timeout": timeout * 1000}})
    reply = receive_reply(sock, ident)
    if "exceptionDetails" in reply.get("result", {}):
        return {"exception": reply["result"]["exceptionDetails"].get("text", "")}
    return reply.get("result", {}).get("result", {}).get("value")

# Runs in the page: waits for the fleet, opens the device, downloads one export, watches live
# until `seconds` of latency samples are in.
PAGE_CHECK = """
(async () => {
  const until = async (test, seconds) => {
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) { const value = test(); if (value) return value; await new Promise(r => setTimeout(r, 100)); }
    return null;
  };
  const row = await until(() => document.querySelector("#fleet tbody tr"), 30);
  if (!row) return { error: document.getElementById("error").textContent || "no fleet row" };
  const rows = [...document.querySelectorAll("#fleet tbody tr")].map(r => [...r.cells].map(c => c.textContent));
  row.querySelector("button").click();
  const segment = await until(() => document.querySelector("#segments tbody tr a"), 30);
  let exportStatus = null, exportType = null, exportBytes = 0, exportDuration = null, segmentDuration = null, signaturePictures = 0;
  if (segment) {
    const response = await fetch(segment.href);
    exportStatus = response.status; exportType = response.headers.get("content-type");
    const body = await response.blob();
    exportBytes = body.size;
    if (exportStatus === 200) {
      // The download in a <video> element: the whole segment's length, not a fragment's.
      const video = document.createElement("video");
      video.muted = true;
      const loaded = new Promise(ok => { video.onloadedmetadata = ok; video.onerror = ok; setTimeout(ok, 20000); });
      video.src = URL.createObjectURL(body);
      await loaded;
      exportDuration = video.duration;
      // Pictures of the next segment that sign this one's last GOP (docs/EXPORT.md).
      signaturePictures = Number(response.headers.get("x-bodycam-signature-pictures") || "0");
      const name = decodeURIComponent(segment.href.split("/").pop()).replace(/\.mp4$/, ".bcseg");
      const listing = await (await fetch(segment.href.replace(/\/export\/[^/]*$/, "/segments"))).json();
      const entry = (listing.segments || []).find(s => s.file === name);
      segmentDuration = entry ? entry.duration_us / 1e6 : null;
    }
  }
  const verified = [...document.querySelectorAll("#segments tbody tr")].map(r => r.cells[5].textContent);
  document.getElementById("watch").click();
  await until(() => window.bodycam.latencies.length >= %(samples)d, %(seconds)d);
  const video = document.getElementById("video");
  return { rows, verified, exportStatus, exportType, exportBytes, exportDuration, segmentDuration, signaturePictures, latencies: window.bodycam.latencies,
           currentTime: video.currentTime, width: video.videoWidth, height: video.videoHeight,
           decoded: video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : null,
           received: window.bodycam.received, appended: window.bodycam.appended, codec: window.bodycam.codec,
           readyState: video.readyState, paused: video.paused, mediaError: video.error ? video.error.message : null,
           buffered: [...Array(video.buffered.length).keys()].map(i => [video.buffered.start(i), video.buffered.end(i)]),
           error: document.getElementById("error").textContent };
})()
"""

LOAD_CHECK = """
(async () => {
  await new Promise(r => setTimeout(r, 2000));
  const fleet = document.querySelectorAll("#fleet tbody tr").length;
  const error = document.getElementById("error");
  return { title: document.title, fleet, error: error ? error.textContent : null, text: document.body ? document.body.innerText.slice(0, 200) : null };
})()
"""

# Runs in a file:// page of the export folder: each file in a <video> element, its duration, and
# the picture shown after seeks to 25, 50 and 75 % (as grey, base64) with where the seek landed.
VIDEO_CHECK = """
(async (names) => {
  const within = (promise, seconds, what) => Promise.race([promise,
    new Promise((_, fail) => setTimeout(() => fail(new Error(what + ": no answer in " + seconds + " s")), seconds * 1000))]);
  const results = [];
  for (const name of names) {
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    document.body.appendChild(video);
    try {
      await within(new Promise((ok, fail) => { video.onloadeddata = ok; video.onerror = () => fail(new Error(video.error ? video.error.message : "error")); video.src = name; }), 30, name);
      const entry = { name, duration: video.duration, width: video.videoWidth, height: video.videoHeight, seeks: [] };
      for (const fraction of [0.25, 0.5, 0.75]) {
        const target = video.duration * fraction;
        const seeked = new Promise(ok => video.addEventListener("seeked", ok, { once: true }));
        video.currentTime = target;
        await within(seeked, 30, name + " seek to " + target);
        // Wait for the picture at the new position to be presented (or 1 s, if it already was).
        if (video.requestVideoFrameCallback) await Promise.race([new Promise(ok => video.requestVideoFrameCallback(() => ok())), new Promise(ok => setTimeout(ok, 1000))]);
        const canvas = document.createElement("canvas");
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        const context = canvas.getContext("2d");
        context.drawImage(video, 0, 0);
        const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const grey = new Uint8Array(canvas.width * canvas.height);
        for (let i = 0, j = 0; j < grey.length; i += 4, j++) grey[j] = (rgba[i] * 77 + rgba[i + 1] * 150 + rgba[i + 2] * 29) >> 8;
        let binary = "";
        for (let k = 0; k < grey.length; k += 8192) binary += String.fromCharCode.apply(null, grey.subarray(k, k + 8192));
        entry.seeks.push({ fraction, target, currentTime: video.currentTime, grey: btoa(binary) });
      }
      results.push(entry);
    } catch (error) {
      results.push({ name, error: String(error) });
    }
    video.remove();
  }
  return results;
})(%s)
"""

def main():
    port_file, url, check = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    sock = connect(port_file)
    send(sock, {"id": 2, "method": "Page.enable"})
    receive_reply(sock, 2)
    send(sock, {"id": 3, "method": "Page.navigate", "params": {"url": url}})
    navigated = receive_reply(sock, 3).get("result", {})
    if navigated.get("errorText"):
        print(json.dumps({"loaded": False, "error": navigated["errorText"]}))
        return
    while True:
        message = receive(sock)
        if message.get("method") == "Page.loadEventFired":
            break
    if check == "page":
        result = evaluate(sock, 4, PAGE_CHECK % {"samples": 20, "seconds": seconds}, seconds + 60)
    elif check.startswith("video:"):
        result = evaluate(sock, 4, VIDEO_CHECK % json.dumps(check[len("video:"):].split(",")), seconds + 60)
    else:
        result = evaluate(sock, 4, LOAD_CHECK, 30)
    print(json.dumps({"loaded": True, "result": result}))

main()
