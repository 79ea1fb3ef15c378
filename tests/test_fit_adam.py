"""Our minimal Adam agrees with torch.optim.Adam step for step."""
import torch

from lagc_hand.fitting.adam import Adam, cosine_scale


def test_matches_torch_adam_with_two_groups():
    torch.manual_seed(0)
    target = torch.randn(7, 3)
    a1, b1 = torch.randn(7, 3, requires_grad=True), torch.randn(3, requires_grad=True)
    a2, b2 = a1.detach().clone().requires_grad_(True), b1.detach().clone().requires_grad_(True)
    ours = Adam([([a1], 0.05), ([b1], 0.01)])
    ref = torch.optim.Adam([{"params": [a2], "lr": 0.05}, {"params": [b2], "lr": 0.01}])
    for _ in range(25):
        for a, b, opt in ((a1, b1, ours), (a2, b2, ref)):
            opt.zero_grad()
            loss = ((a + b - target) ** 2).sum() + (a ** 3).sum() * 0.01
            loss.backward()
            opt.step()
    torch.testing.assert_close(a1, a2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b1, b2, rtol=1e-5, atol=1e-6)


def test_cosine_scale_ends():
    assert cosine_scale(0, 40, 0.05) == 1.0
    assert abs(cosine_scale(40, 40, 0.05) - 0.05) < 1e-12
    assert abs(cosine_scale(20, 40, 0.05) - 0.525) < 1e-12
