"""Create a study of small synthetic outputs (no benchmark run needed) and a researcher; print its facts as JSON.

python tests/support/seed_study.py NAME IMAGES METHODS   (settings from the environment)
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from mos_study.models import Method, Output, TestImage  # noqa: E402
from mos_study.services.study_setup import create_study  # noqa: E402
from sr_models.imageio import image_sha256, write_png  # noqa: E402


def main(name, images, methods):
    rng = np.random.default_rng(0)
    for method_name in methods:
        method, _ = Method.objects.get_or_create(name=method_name)
        for index in range(images):
            pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            sha = image_sha256(pixels)
            relative = f"outputs/{sha}.png"
            write_png(Path(settings.MEDIA_ROOT) / relative, pixels)
            image, _ = TestImage.objects.get_or_create(
                dataset="Synthetic", name=f"img_{index:03d}", defaults={"hr_sha256": sha, "width": 16, "height": 16}
            )
            Output.objects.create(method=method, image=image, sha256=sha, file=relative, width=16, height=16)
    user = get_user_model().objects.create_user("researcher", password="load-test-password")
    study = create_study(name, ["Synthetic"], methods, ratings_per_stimulus=100_000, owner=user, run_missing=False)
    print(
        json.dumps(
            {
                "token": study.token,
                "id": study.pk,
                "stimuli": study.stimuli.count(),
                "username": "researcher",
                "password": "load-test-password",
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","))
