"""Upscale an image from Python and see where the compute went.

    python examples/api_upscale.py examples/baby.png                 # the installed x4 model
    python examples/api_upscale.py examples/lighthouse.jpg --model PATH.safetensors -x 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

from classsr_cli import zoo
from classsr_cli.io.image import read_image, write_image
from classsr_cli.pipeline import Upscaler
from classsr_cli.plan import default_output_name
from classsr_cli.runtime import resolve_device

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("image", type=Path)
parser.add_argument("--model", default=None, help="model name or .safetensors path (default: the installed one)")
parser.add_argument("-x", "--scale", type=float, default=None, help="default: the model's own scale (4 without --model)")
parser.add_argument("-o", "--output", type=Path, default=None, help="output file (default: beside the input, as the CLI)")
args = parser.parse_args()

# 1. Load the model for the scale, on the best device (cuda, then mps, then cpu).
scale = args.scale or zoo.own_scale(args.model)  # as the CLI: a --model's own scale unless -x says otherwise
upscaler = Upscaler.of(zoo.load(args.model, scale, device=resolve_device("auto")))

# 2. Read: EXIF orientation applied, mode kept (gray, alpha, 16-bit), ICC/EXIF carried.
picture = read_image(args.image)

# 3. Upscale in memory: patches are classified and each branch runs once per batch of its patches.
result, info = upscaler.upscale_picture(picture)

# 4. Write atomically; by default beside the input under the CLI's name (photo_x4.png), which folder runs and
#    `classsr bench` recognise as an output, not an input.
out = args.output or args.image.with_name(default_output_name(args.image, scale))
write_image(out, result, overwrite=True)

light, medium, heavy = info.route.counts
flops = info.route.flops
print(f"{args.image} -> {out}: {picture.width}x{picture.height} -> {result.width}x{result.height}")
print(f"patches: light {light}, medium {medium}, heavy {heavy}")
print(f"FLOPs: {flops.used / 1e9:.2f} G used, saved {flops.saved_vs_whole:.1%} vs heavy on the whole image "
      f"({flops.saved:.1%} vs heavy on every patch)")
print(f"model time: {info.model_seconds:.2f} s on {upscaler.device}")
