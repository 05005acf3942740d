"""Reads a TensorBoard event file with TensorBoard's own EventAccumulator (PyPI `tensorboard`;
without TensorFlow it uses its bundled reader, which checks every record's CRCs) and prints
one line per value for tests/test_tb_events.c:
    file_version VERSION      (2.0 for "brain.Event:2")
    scalar TAG STEP VALUE
    image TAG STEP WIDTH HEIGHT PNG_BYTES
    histo TAG STEP NUM MIN MAX SUM BUCKETS BUCKET_SUM
Usage: read_events.py EVENT_FILE"""

import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def main(path):
    acc = ea.EventAccumulator(path, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    tags = acc.Tags()
    print("file_version", acc.file_version)
    for tag in sorted(tags[ea.SCALARS]):
        for e in acc.Scalars(tag):
            print("scalar", tag, e.step, repr(e.value))
    for tag in sorted(tags[ea.IMAGES]):
        for e in acc.Images(tag):
            print("image", tag, e.step, e.width, e.height, len(e.encoded_image_string))
    for tag in sorted(tags[ea.HISTOGRAMS]):
        for e in acc.Histograms(tag):
            h = e.histogram_value
            print("histo", tag, e.step, h.num, repr(h.min), repr(h.max), repr(h.sum),
                  len(h.bucket), sum(h.bucket))


if __name__ == "__main__":
    main(sys.argv[1])
