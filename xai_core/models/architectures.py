"""Network definitions: C3D (Tran et al. 2015) and the bundled small C3D.

Every ReLU is its own module instance (not one shared ``self.relu``): hook-based
methods such as Guided Backprop need to see each use separately. Parameter names of
:class:`C3D` follow the widely used PyTorch port, so its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class C3D(nn.Module):
    """C3D as in Tran et al. (ICCV 2015): 8 convs, 5 pools, fc6/fc7 4096, input 3×16×112×112.

    ``pool5`` pads (0, 1, 1) as the original Caffe model does, giving 512×1×4×4 = 8192
    features for a 112×112 clip.
    """

    def __init__(self, num_classes: int = 101) -> None:
        super().__init__()
        self._conv_relu("1", 3, 64)
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self._conv_relu("2", 64, 128)
        self.pool2 = nn.MaxPool3d(kernel_size=2, stride=2)
        self._conv_relu("3a", 128, 256)
        self._conv_relu("3b", 256, 256)
        self.pool3 = nn.MaxPool3d(kernel_size=2, stride=2)
        self._conv_relu("4a", 256, 512)
        self._conv_relu("4b", 512, 512)
        self.pool4 = nn.MaxPool3d(kernel_size=2, stride=2)
        self._conv_relu("5a", 512, 512)
        self._conv_relu("5b", 512, 512)
        self.pool5 = nn.MaxPool3d(kernel_size=2, stride=2, padding=(0, 1, 1))
        self.flatten = nn.Flatten(1)
        self.fc6 = nn.Linear(8192, 4096)
        self.relu6 = nn.ReLU()
        self.dropout6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU()
        self.dropout7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)

    def _conv_relu(self, suffix: str, cin: int, cout: int) -> None:
        """Add ``conv<suffix>`` (3×3×3, padding 1) and its own ``relu<suffix>``, in that order."""
        self.add_module(f"conv{suffix}", nn.Conv3d(cin, cout, kernel_size=3, padding=1))
        self.add_module(f"relu{suffix}", nn.ReLU())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.pool3(self.relu3b(self.conv3b(self.relu3a(self.conv3a(x)))))
        x = self.pool4(self.relu4b(self.conv4b(self.relu4a(self.conv4a(x)))))
        x = self.relu5b(self.conv5b(self.relu5a(self.conv5a(x))))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.pool5(self.features(x)))
        x = self.dropout6(self.relu6(self.fc6(x)))
        x = self.dropout7(self.relu7(self.fc7(x)))
        return self.fc8(x)


class SmallC3D(nn.Module):
    """C3D's layer pattern at reduced width, with BatchNorm, for the bundled models.

    conv1 16 → pool (1,2,2) → conv2 32 → pool → conv3a/b 64 → pool → conv4a/b 128 →
    global average pool → linear. C3D's pool4/conv5 are dropped so the last feature
    map stays 4×14×14 (a finer CAM); the global-pool + linear head makes CAM (Saliency
    Tubes) exact. BatchNorm is what made training work on the CPU in the project's
    trial (it is merged into the convs for LRP by a canonizer).
    """

    widths = (16, 32, 64, 128)

    def __init__(self, num_classes: int = 8, dropout: float = 0.2) -> None:
        super().__init__()
        w1, w2, w3, w4 = self.widths

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, w1),
            nn.MaxPool3d((1, 2, 2), (1, 2, 2)),
            *block(w1, w2),
            nn.MaxPool3d(2, 2),
            *block(w2, w3),
            *block(w3, w3),
            nn.MaxPool3d(2, 2),
            *block(w3, w4),
            *block(w4, w4),
        )
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(w4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.flatten(self.pool(self.features(x)))))
