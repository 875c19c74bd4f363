"""Marginal cost of one Lloyd iteration, maxlik vs sklearn, same data and init:
(fit with max_iter=41 - fit with max_iter=1) / 40, interleaved rounds.

    python benchmarks/kmeans_iteration.py
"""
import numpy as np, maxlik, time
from sklearn.datasets import make_blobs
from sklearn.cluster import KMeans as SK
X,_=make_blobs(200_000,16,centers=16,random_state=0)
init=X[np.random.default_rng(0).choice(len(X),16,replace=False)]
def t(f,n=5):
  ts=[]
  for _ in range(n):
    s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
  return np.median(ts)*1e3
r=[]
for rep in range(4):
  a=t(lambda: maxlik.KMeans(16,init=init,n_init=1,max_iter=41,tol=0).fit(X))-t(lambda: maxlik.KMeans(16,init=init,n_init=1,max_iter=1,tol=0).fit(X))
  b=t(lambda: SK(16,init=init,n_init=1,max_iter=41,tol=0,algorithm='lloyd').fit(X))-t(lambda: SK(16,init=init,n_init=1,max_iter=1,tol=0,algorithm='lloyd').fit(X))
  r.append((a/40,b/40)); print('maxlik %.2f ms/iter  sklearn %.2f ms/iter  ratio %.2f'%(a/40,b/40,b/a), flush=True)
