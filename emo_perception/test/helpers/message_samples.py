"""One sample of every message type, with distinctive field values, for round-trip tests."""
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from emo_perception_msgs.msg import (Affect, AffectArray, AudioEmbedding, FaceEmbedding,
                                     FaceEmbeddingArray)
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header


def _header(sec):
    h = Header(frame_id="camera_optical")
    h.stamp.sec, h.stamp.nanosec = sec, 123_000_000
    return h


def _face(i):
    return FaceEmbedding(
        track_id=f"f{i}", box=RegionOfInterest(x_offset=10 * i, y_offset=20, height=96, width=80),
        detection_confidence=0.5 + 0.1 * i, track_age=7 + i, embedding=[0.25 * i, -1.5, 3.0],
        expression_probabilities=[0.5, 0.0, 0.0, 0.25, 0.25, 0.0, 0.0], valence=0.25, arousal=-0.5)


def samples():
    """Topic name -> message instance."""
    return {
        "face_embedding": _face(1),
        "face_embedding_array": FaceEmbeddingArray(
            header=_header(10), model_id="face_student@ab12", image_width=640, image_height=480,
            processing_time=0.0125, faces=[_face(1), _face(2)]),
        "face_embedding_array_empty": FaceEmbeddingArray(header=_header(11), model_id="m", faces=[]),
        "audio_embedding": AudioEmbedding(
            header=_header(12), window_duration=0.96, voice_probability=0.75, loudness_dbfs=-23.5,
            model_id="audio_vggish@cd34", embedding=[float(k) for k in range(128)]),
        "affect": Affect(track_id="f3", valence=-0.25, arousal=0.75, confidence=0.5,
                         modalities=Affect.MODALITY_FACE | Affect.MODALITY_VOICE,
                         box=RegionOfInterest(x_offset=1, y_offset=2, height=3, width=4)),
        "affect_array": AffectArray(
            header=_header(13), mode=AffectArray.MODE_PRIOR, model_id="prior",
            people=[Affect(track_id="f1", valence=0.5, arousal=0.0, confidence=1.0, modalities=1)]),
        "audio_data": AudioData(data=bytes(range(256)) * 4),
        "audio_data_stamped": AudioDataStamped(header=_header(14), audio=AudioData(data=b"\x01\x02\xff")),
        "audio_info": AudioInfo(channels=2, sample_rate=48000, sample_format="S16LE", bitrate=0,
                                coding_format="wave"),
    }


def to_plain(msg):
    """Message -> JSON-friendly nested dict/list (field by field, recursively)."""
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: to_plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (bytes, bytearray)):
        return list(msg)
    if isinstance(msg, (list, tuple)) or hasattr(msg, "tolist"):
        return [to_plain(v) for v in (msg.tolist() if hasattr(msg, "tolist") else msg)]
    if isinstance(msg, float):
        return round(msg, 6)
    return msg
