"""Event clips and snapshots (issue #18): MP4s cut from a buffer of the encoded stream
without re-encoding, and JPEGs of each track's best box.

    reader --packets--> ring.PacketRing (per source)      rules.Rules: which events
    track stage --events, messages--> recorder.ClipRecorder --Capture--> writer.ClipWriter
        (thread: MP4 by stream copy, snapshots.write_snapshots, retention.Retention)
        --clip_ready--> track stage --EventBatch--> sinks

Settings: pipeline/core/clips_config.py; documentation: docs/clips.md.
"""
