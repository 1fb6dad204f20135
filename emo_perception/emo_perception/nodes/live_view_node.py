"""live_view_node (`emo_live_view`): a small local web page of each person's valence and arousal
over the last minute, the current point on the circumplex, confidence, modality presence, the
participant assigned to each track and the event markers (every event of `events`: emo_record
publishes there the ones marked through its `mark_event` service too).
Served by aiohttp from a thread of this node, on 127.0.0.1 unless `host` says otherwise; the page is
plain HTML/JavaScript of this package (web/live_view.html) and fetches nothing from elsewhere.
No image is ever shown (faces are personal data; the debug image stays a ROS topic).
"""
from __future__ import annotations

import asyncio
import importlib.resources
import threading

from emo_perception_msgs.msg import AffectArray
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from .. import conversions
from ..core.health import OK, WARN
from ..runtime.config import LiveViewConfig
from ..runtime.live_state import LiveState
from ..runtime.params import ConfigError
from .node_support import NO_INPUT_S, EmoNode, RateMeter
from .runner import main_for

QOS = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)


class LiveViewNode(EmoNode):
    CONFIG = LiveViewConfig
    DESCRIPTION = "a local web page of the last minute of affect and the event markers"
    TOPICS = (("in", "affect", "emo_perception_msgs/AffectArray", "from fusion_node"),
              ("in", "events", "std_msgs/String", "event markers (every one emo_record logs: it publishes the "
               "service-marked ones there)"),
              ("out", "http://host:port/", "HTML + /state (JSON)", "the page"),
              ("out", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "address, input rate"))

    def __init__(self, **kwargs):
        super().__init__("live_view_node", **kwargs)
        self.state, self._lock, self._rate = None, threading.Lock(), RateMeter()
        self._server = None

    def configure(self, cfg: LiveViewConfig):
        self.state = LiveState(cfg.window)
        page = importlib.resources.files("emo_perception").joinpath("web/live_view.html").read_text()
        self._page = page.replace("REFRESH_MS", str(int(cfg.refresh_period * 1000)))
        self._server = _Server(cfg.host, cfg.port, self._page, self._snapshot)
        try:
            self._server.start()
        except OSError as err:
            self._server = None
            raise ConfigError(f"parameter 'port' is {cfg.port} (host '{cfg.host}'): cannot serve there: "
                              f"{err.strerror or err}; choose a free port") from err
        self.get_logger().info(f"live view on http://{cfg.host}:{cfg.port}/")

    def activate(self):
        self.subscribe(AffectArray, "affect", self._on_affect, QOS)
        self.subscribe(String, "events", self._on_event, QOS)

    def release(self):
        if self._server is not None:
            self._server.stop()
        self._server, self.state = None, None

    def _on_affect(self, msg):
        self._rate.tick()
        f = conversions.affect_from_msg(msg)
        with self._lock:
            self.state.add_affect(f.step.time, [(p.track_id, p.valence, p.arousal, p.confidence, p.face, p.voice)
                                                for p in f.step.people])

    def _on_event(self, msg):
        with self._lock:
            self.state.add_event(msg.data)

    def _snapshot(self):
        with self._lock:
            return self.state.snapshot() if self.state else {"people": {}, "events": [], "window_s": 0}

    def health(self):
        values = {"url": f"http://{self.cfg.host}:{self.cfg.port}/", "affect_rate_hz": f"{self._rate.rate():.1f}"}
        if self._rate.rate() == 0.0:
            return WARN, f"no affect received in the last {NO_INPUT_S:.0f} s", values
        return OK, "ok", values


class _Server:
    """aiohttp in its own thread and event loop: the node's executor never waits on the web."""

    def __init__(self, host, port, page, snapshot):
        self.host, self.port, self.page, self.snapshot = host, port, page, snapshot
        self._loop, self._thread, self._runner = None, None, None

    def start(self):
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/", lambda request: web.Response(text=self.page, content_type="text/html"))
        app.router.add_get("/state", lambda request: web.json_response(self.snapshot()))
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            self._loop.run_until_complete(site.start())   # binding errors surface here, in configure
        except OSError:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()
            raise
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def stop(self):
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None


main = main_for(LiveViewNode)

if __name__ == "__main__":
    raise SystemExit(main())
