//! Go's `value.NewPrefixTransformers`: each stored value starts with the prefix
//! of the transformer that wrote it, so one store can read values written
//! under every key a config has held while writing with the newest.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;

use super::envelope::metrics::KmsMetrics;
use super::{without_waiting, Cause, Outcome, TransformError, Transformer};

/// A transformer and the prefix its values are stored under.
#[derive(Clone)]
pub struct PrefixTransformer {
    /// Stripped before reading, prepended after writing; empty for identity.
    pub prefix: Vec<u8>,
    /// Sees the value without its prefix.
    pub transformer: Arc<dyn Transformer>,
}

/// Reads with whichever transformer's prefix the value carries, writes with the first.
pub struct PrefixTransformers {
    transformers: Vec<PrefixTransformer>,
    /// The metrics of its KMS providers, when it has any.
    kms: Option<KmsMetrics>,
}

impl PrefixTransformers {
    /// `None` when `transformers` is empty: writes need a first transformer.
    pub fn new(transformers: Vec<PrefixTransformer>) -> Option<Self> {
        Self::with_kms(transformers, None)
    }

    pub(crate) fn with_kms(
        transformers: Vec<PrefixTransformer>,
        kms: Option<KmsMetrics>,
    ) -> Option<Self> {
        (!transformers.is_empty()).then_some(PrefixTransformers { transformers, kms })
    }
}

#[async_trait]
impl Transformer for PrefixTransformers {
    fn transform_from_storage<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        self.transform_from_storage_observed(data, authenticated_data, &mut |_, _| {})
    }

    fn provider_prefixes(&self) -> Vec<Vec<u8>> {
        self.transformers.iter().map(|t| t.prefix.clone()).collect()
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.kms
            .as_ref()
            .map_or_else(Vec::new, KmsMetrics::collectors)
    }

    async fn refresh(&self) -> Result<(), TransformError> {
        for t in &self.transformers {
            t.transformer.refresh().await?;
        }
        Ok(())
    }

    /// Every provider's health, in order; the first failure.
    async fn health(&self) -> Result<(), TransformError> {
        for t in &self.transformers {
            t.transformer.health().await?;
        }
        Ok(())
    }

    fn transform_from_storage_observed<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
        observe: &mut (dyn FnMut(Option<usize>, Outcome) + Send),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        without_waiting(self.read(data, authenticated_data, observe))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        without_waiting(self.write(data, authenticated_data))
    }

    /// Tries, in order, every transformer whose prefix the value starts with.
    /// A failure does not end the search: two providers of one type may reuse
    /// a key name (one being rotated in, the other out), sharing a prefix. An
    /// identity transformer's failure is not reported at all: it only means
    /// the value is encrypted and a later provider should read it. A value not
    /// read by the first transformer is stale.
    async fn read<'a>(
        &self,
        data: &'a [u8],
        authenticated_data: &[u8],
        observe: &mut (dyn FnMut(Option<usize>, Outcome) + Send),
    ) -> Result<(Cow<'a, [u8]>, bool), TransformError> {
        let mut errors: Vec<String> = Vec::new();
        // A plugin that could not be asked says more than a key that did not fit.
        let mut cause = Cause::Data;
        for (i, t) in self.transformers.iter().enumerate() {
            let Some(rest) = data.strip_prefix(t.prefix.as_slice()) else {
                continue;
            };
            match t
                .transformer
                .read(rest, authenticated_data, &mut |_, _| {})
                .await
            {
                Ok((out, stale)) => {
                    let stale = stale || i != 0;
                    observe(Some(i), Outcome::Read { stale });
                    return Ok((out, stale));
                }
                Err(_) if t.prefix.is_empty() => {}
                Err(e) => {
                    observe(Some(i), Outcome::Failed);
                    if cause == Cause::Data {
                        cause = e.1;
                    }
                    if !errors.contains(&e.0) {
                        errors.push(e.0);
                    }
                }
            }
        }
        if errors.is_empty() {
            observe(None, Outcome::Failed);
        }
        let message = match errors.len() {
            0 => "no matching prefix found".to_owned(),
            1 => errors.remove(0),
            _ => format!("[{}]", errors.join(", ")),
        };
        Err(TransformError(message, cause))
    }

    async fn write(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let first = &self.transformers[0];
        let body = first.transformer.write(data, authenticated_data).await?;
        let mut out = Vec::with_capacity(first.prefix.len() + body.len());
        out.extend_from_slice(&first.prefix);
        out.extend_from_slice(&body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::identity::Identity;
    use crate::value::testutil::key;
    use crate::value::{aescbc, aesgcm};

    fn entry(prefix: &str, transformer: Arc<dyn Transformer>) -> PrefixTransformer {
        PrefixTransformer {
            prefix: prefix.as_bytes().to_vec(),
            transformer,
        }
    }

    fn gcm(seed: u8) -> Arc<dyn Transformer> {
        aesgcm::new(&key(32, seed)).unwrap()
    }

    fn list(entries: Vec<PrefixTransformer>) -> PrefixTransformers {
        PrefixTransformers::new(entries).unwrap()
    }

    #[test]
    fn writes_with_the_first_and_prepends_its_prefix() {
        let t = list(vec![
            entry("k8s:enc:aesgcm:v1:a:", gcm(1)),
            entry("", Arc::new(Identity)),
        ]);
        let stored = t.transform_to_storage(b"hello", b"/k").unwrap();
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:a:"));
        assert_eq!(stored.len(), "k8s:enc:aesgcm:v1:a:".len() + 12 + 5 + 16);
        let (out, stale) = t.transform_from_storage(&stored, b"/k").unwrap();
        assert_eq!((out.as_ref(), stale), (&b"hello"[..], false));
    }

    #[test]
    fn reads_with_any_listed_prefix_and_marks_later_ones_stale() {
        let old = list(vec![entry("k8s:enc:aesgcm:v1:old:", gcm(2))]);
        let stored = old.transform_to_storage(b"v", b"/k").unwrap();
        let t = list(vec![
            entry("k8s:enc:aesgcm:v1:new:", gcm(3)),
            entry("k8s:enc:aesgcm:v1:old:", gcm(2)),
        ]);
        let (out, stale) = t.transform_from_storage(&stored, b"/k").unwrap();
        assert_eq!((out.as_ref(), stale), (&b"v"[..], true));
    }

    #[test]
    fn identity_first_reads_plaintext_fresh_and_falls_through_on_encrypted() {
        let enc = entry("k8s:enc:aesgcm:v1:a:", gcm(4));
        let t = list(vec![entry("", Arc::new(Identity)), enc.clone()]);
        let (out, stale) = t.transform_from_storage(b"{\"plain\":1}", b"/k").unwrap();
        assert_eq!((out.as_ref(), stale), (&b"{\"plain\":1}"[..], false));

        let stored = list(vec![enc])
            .transform_to_storage(b"secret", b"/k")
            .unwrap();
        let (out, stale) = t.transform_from_storage(&stored, b"/k").unwrap();
        assert_eq!((out.as_ref(), stale), (&b"secret"[..], true));
    }

    #[test]
    fn a_failing_match_falls_through_to_a_later_one_with_the_same_prefix() {
        let stored = list(vec![entry("k8s:enc:aesgcm:v1:k:", gcm(5))])
            .transform_to_storage(b"v", b"/k")
            .unwrap();
        let t = list(vec![
            entry("k8s:enc:aesgcm:v1:k:", gcm(6)),
            entry("k8s:enc:aesgcm:v1:k:", gcm(5)),
        ]);
        let (out, stale) = t.transform_from_storage(&stored, b"/k").unwrap();
        assert_eq!((out.as_ref(), stale), (&b"v"[..], true));
    }

    #[test]
    fn errors_name_what_failed() {
        let t = list(vec![
            entry("k8s:enc:aesgcm:v1:a:", gcm(7)),
            entry("k8s:enc:aescbc:v1:a:", aescbc::new(&key(16, 7)).unwrap()),
            entry("", Arc::new(Identity)),
        ]);
        // Encrypted under a prefix nobody lists: identity refuses it silently.
        let err = t
            .transform_from_storage(b"k8s:enc:secretbox:v1:a:xxxx", b"/k")
            .unwrap_err();
        assert_eq!(err.0, "no matching prefix found");
        // One matching transformer failing: its own error.
        let err = t
            .transform_from_storage(b"k8s:enc:aesgcm:v1:a:short", b"/k")
            .unwrap_err();
        assert_eq!(err.0, "the stored data was shorter than the required size");
        // Several failing: each distinct error once, as Go's aggregate error.
        let nested = list(vec![
            entry("k8s:enc:aesgcm:v1:a:", gcm(8)),
            entry("k8s:enc:aesgcm:v1:", gcm(9)),
            entry("k8s:enc:aesgcm:", gcm(10)),
        ]);
        // 25 bytes after the longest prefix: too short for the first two
        // (nonce and tag take 28), long enough but forged for the third.
        let value = [&b"k8s:enc:aesgcm:v1:a:"[..], &[0u8; 25]].concat();
        let err = nested.transform_from_storage(&value, b"/k").unwrap_err();
        assert_eq!(
            err.0,
            "[the stored data was shorter than the required size, \
             cipher: message authentication failed]"
        );
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(PrefixTransformers::new(Vec::new()).is_none());
    }
}
