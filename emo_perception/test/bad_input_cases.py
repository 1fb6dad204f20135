"""The bad-input cases: what goes in, and what the nodes do with it. docs/robustness.md's bad-input table
is rendered from this list (test_readme.py keeps them equal), and every case is covered by a test that
sends it through ROS (`@covers("id")`; test_readme.py checks that each id has one)."""

CASES = {
    # id: (what goes in, what the node does)
    "unknown_encoding": ("Image with an unsupported encoding (e.g. bayer_rggb8)",
                         "frame dropped, logged with the supported encodings, `frames_rejected` counted; "
                         "next frame processed"),
    "corrupt_jpeg": ("CompressedImage that is not JPEG/PNG, or has 0 bytes",
                     "frame dropped and logged (`could not decode` / `has no data`), counted; the node goes on"),
    "degenerate_image": ("6000x1 Image (a line, not a frame)",
                         "no face, no crash: the detector skips frames too small once downscaled"),
    "older_frame": ("image stamped earlier than the previous one (less than `time_jump_threshold`)",
                    "dropped as out of order, logged, `frames_out_of_order` counted"),
    "burst": ("30 frames at once",
              "the newest is processed, the rest counted as `frames_skipped` (no queue builds up)"),
    "camera_silent": ("no images for 5 s", "/diagnostics WARN `no images received`"),
    "two_cameras": ("two cameras on one `image` topic (frame_ids `cam_left`, `cam_right`; stamps interleaved, "
                    "faces overlapping)",
                    "each camera has its own tracks and stamp order (ids unique across cameras); logged once, "
                    "/diagnostics WARN `2 cameras on one image topic` with `frame_ids`"),
    "frames_lost_before_node": ("60 % of a 30 Hz camera's frames lost before the face node (e.g. 4K frames over "
                                "a too small Fast DDS segment)",
                                "/diagnostics WARN `N % of the frames of 'camera' never reach this node`, with "
                                "`stamped_rate_hz` and `missing_before_node_percent`"),
    "camera_restart": ("camera resumes 9 s of data time later",
                       "its first frame waits for the next, which confirms the time jump: logged, tracks reset, "
                       "the person gets a new track id"),
    "day_ahead_image": ("one image stamped a day ahead in a running stream",
                        "face node: held until the next frame, then dropped as one bad stamp (`bad_stamps` 1, "
                        "logged); tracks kept, the fusion never sees it; affect continues"),
    "bag_loop": ("a 10 s bag played in a loop five times (stamps go back 10 s)",
                 "each node logs the jump once per loop and resets its state; AffectArray in every loop"),
    "late_camera": ("camera frames stamped 0.6 s before they arrive (USB capture + driver), microphone on time",
                    "fused by stamp: the fusion measures the lag (`face_lag_s` on /diagnostics) and waits for it; "
                    "faces in every step once both run; a lag beyond `max_lag`: /diagnostics WARN naming the "
                    "measured lag and `max_lag`"),
    "no_microphone": ("camera only: no audio publisher at all",
                      "nothing waits for the audio: each step goes out when its face embedding arrives, the first "
                      "with the first one; a microphone that starts later joins `max_wait` after its first stamp"),
    "audio_jump": ("audio stamped a day ahead, then back",
                   "logged (`audio stamps jumped ...`), stream restarted, /diagnostics WARN; embeddings resume"),
    "mp3_info": ("AudioInfo with coding_format mp3",
                 "/diagnostics ERROR naming the fix (`format:=wave`); chunks dropped until a raw PCM AudioInfo"),
    "no_info": ("audio but never an AudioInfo",
                "/diagnostics ERROR `no usable audio_info` (transient-local, remapping)"),
    "resampled_audio": ("48 kHz stereo audio with its AudioInfo", "resampled to 16 kHz mono; embeddings every 40 ms"),
    "audio_out_of_order": ("out-of-order and duplicate audio chunks",
                           "dropped, `chunks_out_of_order` counted; output unchanged"),
    "empty_chunks": ("empty audio chunks mixed into good audio",
                     "ignored (output rate unchanged), /diagnostics WARN `without samples`"),
    "info_mismatch": ("AudioInfo says 48 kHz stereo, data is 16 kHz mono",
                      "/diagnostics ERROR `audio arrives at about N samples/s ... declares 48000 Hz`, logged once"),
    "rate_change": ("the data rate changes mid-stream (AudioInfo unchanged)",
                    "/diagnostics ERROR as above, within 4 s of the change"),
    "lifecycle": ("configure/activate/deactivate/activate/cleanup cycles while data flows, then shutdown",
                  "same entities every cycle, output and /diagnostics resume after each activate; "
                  "exits after shutdown"),
    "good_input_timing": ("good input at the default processing_rate",
                          "diagnostics OK: processing time is the work, the wait for the next tick is reported apart"),
    "bad_parameter": ("a parameter value outside its range or choices, a misspelt parameter, hop > window, ...",
                      "configure fails with one line naming parameter, value and what is allowed; exit 1"),
    "missing_model": ("a model card that does not exist", "configure fails naming the file; exit 1"),
    "lying_model_card": ("a model card declaring a 48x48 input on the 64x64 ONNX (or another name, dtype, rank or "
                         "output)",
                         "configure fails with one line: `input 'face' has shape [...] in the model, [...] in the "
                         "card`; exit 1. A card that tells the truth about 48x48 gets 48x48 crops"),
    "hri_without_msgs": ("publish_hri: true without hri_msgs", "configure fails naming the package to install"),
    "unstamped_audio": ("a driver that leaves every audio stamp at 0",
                        "one ERROR naming `audio_stamped` and the cause; chunks dropped (`unstamped_chunks`), "
                        "/diagnostics ERROR; with `stamp_source: arrival` (and `stamp_position: end`) they are "
                        "stamped on arrival"),
    "unstamped_images": ("every image stamped 0 for 2.5 s in a running stream",
                         "one ERROR naming `image` and the cause; frames dropped (`unstamped_frames`) before the "
                         "fusion: its time base never moves, no AffectArray near 0; `stamp_source: arrival` stamps "
                         "them on arrival"),
    "zero_stamp_chunk": ("one audio chunk stamped 0 in good audio",
                         "held until the next chunk, then one bad stamp (`bad_stamps` 1, logged); its samples go "
                         "where they belong: no embedding lost or moved"),
    "odd_byte_chunk": ("one S16LE chunk with an odd byte count (or any chunk lost below `gap_tolerance`)",
                       "dropped and logged; the hole is a gap (`gaps` 1), filled with silence: every later "
                       "embedding keeps its stamp (a longer hole: no window spans it)"),
    "unsupported_encodings": ("frames with several unsupported encodings in a row (16UC1, nv12, 32FC1)",
                              "each encoding logged (the log throttle is per cause), all counted as `frames_rejected`"),
}


def covers(case_id):
    """Mark a test as sending bad-input case `case_id` through ROS."""
    assert case_id in CASES, case_id

    def mark(fn):
        fn.bad_input_cases = getattr(fn, "bad_input_cases", ()) + (case_id,)
        return fn
    return mark


def table() -> str:
    rows = ["| input | what the node does |", "|---|---|"]
    rows += [f"| {what} | {does} |" for what, does in CASES.values()]
    return "\n".join(rows)
