"""'Create more training data': random rotations and shifts of image batches, on the device.

Every sample gets its own transform, drawn and applied in one batched `affine_grid` +
`grid_sample` call, so augmentation costs a couple of kernels per batch, not a Python loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dltips.checks import require, require_number


class Augment:
    """Rotate each image by U(−rotate, rotate) degrees and shift it by U(−shift, shift) pixels.

    Inputs are normalized rows; the transform is applied to the raw image (x·scale + shift),
    so the area moved in from outside the frame is background (0), then normalized again.
    """

    def __init__(self, rotate: float, shift: float, image_shape, norm_shift: torch.Tensor, norm_scale: torch.Tensor):
        for key, value in [("rotate", rotate), ("shift", shift)]:
            require_number(f"data.augment.{key}", value)
            require(
                not value or image_shape is not None,
                f"data.augment.{key}",
                value,
                "0 (this data has no image shape; rotate and shift need data=digits, mnist5k, mnist or fashion_mnist)",
            )
        # Past these bounds the draws only add images turned any which way or moved out of the
        # frame (all background): the run trains at chance instead of failing.
        require(rotate <= 180, "data.augment.rotate", rotate, "0 to 180 (degrees; ±180 already reaches every angle)")
        if image_shape is not None:
            side = max(image_shape)
            shape = f"{image_shape[0]}×{image_shape[1]}"
            require(shift <= side, "data.augment.shift", shift, f"0 to {side} (pixels; the images are {shape})")
        self.rotate, self.shift, self.image_shape = float(rotate), float(shift), image_shape
        self.norm_shift, self.norm_scale = norm_shift, norm_scale

    @property
    def enabled(self) -> bool:
        return self.rotate > 0 or self.shift > 0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.enabled:
            return x
        return self.apply(x, *self.draw(x.shape[0], x.device, generator))

    def draw(
        self, n: int, device: torch.device, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n random (angle, shift) pairs: (n,) radians and (n, 2) pixels."""
        angle = (torch.rand(n, device=device, generator=generator) * 2 - 1) * math.radians(self.rotate)
        shift = (torch.rand(n, 2, device=device, generator=generator) * 2 - 1) * self.shift
        return angle, shift

    def apply(self, x: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        raw = x * self.norm_scale + self.norm_shift
        return transform(raw, self.image_shape, angle, shift).sub(self.norm_shift).div(self.norm_scale)


def transform(x: torch.Tensor, image_shape, angle: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate rows of flattened images by `angle` radians about the centre, turning +x (right)
    towards +y (down; clockwise on screen), then move them by `shift` = (dx, dy) pixels.
    x: (n, H·W); angle: (n,); shift: (n, 2)."""
    h, w = image_shape
    images = x.view(-1, 1, h, w)
    cos, sin = angle.cos(), angle.sin()
    # affine_grid maps output coordinates to input coordinates in [−1, 1]; pixel units differ
    # per axis, so rotate in pixel space and convert: the inverse of "rotate then shift".
    dx, dy = shift[:, 0] * 2 / w, shift[:, 1] * 2 / h
    theta = torch.stack(
        [
            torch.stack([cos, sin * h / w, -(cos * dx + sin * dy * h / w)], dim=1),
            torch.stack([-sin * w / h, cos, -(-sin * dx * w / h + cos * dy)], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros").view(x.shape)
