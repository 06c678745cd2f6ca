"""What the Python scripts share, written once: `reference.mnist` reads MNIST's IDX files
(standard library; numpy for arrays), `reference.lenet` defines the PyTorch LeNet and
LeNet-BN that lenet is checked and measured against.

A script in a subfolder of Scripts/ imports them after putting Scripts/ on the path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from reference.mnist import load
"""
