"""export/earthengine/limits.py: the request size Earth Engine counts, the largest patch, pairs per batch task."""

import pytest

from senclr.errors import InputError
from senclr.export.earthengine import limits
from senclr.export.earthengine.batch import task_records


def test_request_size_counts_a_mask_byte_per_band_and_pixel():
    # L1C: 2 float32 + 13 uint16 + 1 float32, each plus a mask byte = 54 bytes a pixel
    assert limits.request_bytes(1, "l1c") == 2 * 5 + 13 * 3 + 5 == 54
    assert limits.request_bytes(1024, "l1c") == 56_623_104  # the size every 1024 px request had
    assert limits.request_bytes(1, "l2a") == 51 and limits.request_bytes(1, "l1c", ("worldcover",)) == 56


@pytest.mark.parametrize("level, largest", [("l1c", 964), ("l2a", 992)])
def test_largest_patch_is_the_last_even_size_under_the_limit(level, largest):
    assert limits.largest_patch_size(level) == largest
    limits.check_patch_size(largest, level)
    assert limits.request_bytes(largest, level) <= limits.COMPUTE_PIXELS_MAX_BYTES < limits.request_bytes(largest + 2, level)
    with pytest.raises(InputError, match=f"use --patch-size {largest} or less"):
        limits.check_patch_size(largest + 2, level)
    assert limits.largest_patch_size(level, ("worldcover",)) < largest


def test_batch_tasks_hold_fewer_pairs_as_patches_grow():
    assert limits.pairs_per_task(128, "l1c") == 1000  # the default export keeps 1000 pairs a task
    assert limits.pairs_per_task(512, "l1c") == 1024**3 // (512 * 512 * 54) == 75
    assert limits.pairs_per_task(964, "l1c") == 21
    plan = {"identity": {"x": 1}, "pairs_per_task": 4, "pairs": [{"pair_id": f"p{i}"} for i in range(10)]}
    tasks = task_records("/nonexistent-out", plan)
    assert [len(t["pair_ids"]) for t in tasks] == [4, 4, 2] and [t["first"] for t in tasks] == [0, 4, 8]
    del plan["pairs_per_task"]  # a plan saved before the byte cap keeps its 1000-pair tasks on resume
    assert [len(t["pair_ids"]) for t in task_records("/nonexistent-out", plan)] == [10]
