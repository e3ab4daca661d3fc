"""Network definitions: C3D (Tran et al. 2015) and the bundled small C3D.

Every ReLU is its own module instance (not one shared ``self.relu``): hook-based
methods such as Guided Backprop need to see each use separately. Parameter names of
:class:`C3D` follow the widely used PyTorch port, so its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=3, padding=1)


class C3D(nn.Module):
    """C3D as in Tran et al. (ICCV 2015): 8 convs, 5 pools, fc6/fc7 4096, input 3×16×112×112.

    ``pool5`` pads (0, 1, 1) as the original Caffe model does, giving 512×1×4×4 = 8192
    features for a 112×112 clip.
    """

    def __init__(self, num_classes: int = 101) -> None:
        super().__init__()
        self.conv1 = _conv(3, 64)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.conv2 = _conv(64, 128)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.conv3a = _conv(128, 256)
        self.relu3a = nn.ReLU()
        self.conv3b = _conv(256, 256)
        self.relu3b = nn.ReLU()
        self.pool3 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.conv4a = _conv(256, 512)
        self.relu4a = nn.ReLU()
        self.conv4b = _conv(512, 512)
        self.relu4b = nn.ReLU()
        self.pool4 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.conv5a = _conv(512, 512)
        self.relu5a = nn.ReLU()
        self.conv5b = _conv(512, 512)
        self.relu5b = nn.ReLU()
        self.pool5 = nn.MaxPool3d(kernel_size=2, stride=2, padding=(0, 1, 1))
        self.flatten = nn.Flatten(1)
        self.fc6 = nn.Linear(8192, 4096)
        self.relu6 = nn.ReLU()
        self.dropout6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu7 = nn.ReLU()
        self.dropout7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)

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
