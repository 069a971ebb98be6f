//! Go's etcd3 `store.List`, with Kubernetes' paging.

use etcd_client::{GetOptions, GetResponse};

use super::client::prefix_range_end;
use super::continue_token;
use super::store::Store;
use crate::codec::versioner::{parse_resource_version, validate_minimum_resource_version};
use crate::storage::{Code, ListOptions, ListResult, Result, StorageError};

fn expired(continuing: bool) -> StorageError {
    let message = if continuing {
        "The provided continue parameter is too old to display a consistent list result. \
         You can start a new list without the continue parameter."
    } else {
        "The resourceVersion for the provided list is too old."
    };
    StorageError::new(Code::Expired, message)
}

fn revision(resp: &GetResponse) -> i64 {
    resp.header().map_or(0, |h| h.revision())
}

/// A read of nothing but the current revision.
fn count_only() -> GetOptions {
    GetOptions::new().with_count_only()
}

/// Lists every key under `key_prefix` (which ends in `/`).
pub(super) async fn list(
    store: &Store,
    key_prefix: &str,
    opts: &ListOptions,
) -> Result<ListResult> {
    let paging = store.paging && opts.limit > 0;
    let mut options = store.read_options();
    if paging {
        options = options.with_limit(opts.limit);
    }
    let mut returned_rv = 0;
    // As Go's `List`: a resourceVersion is checked whether or not the list pages.
    let minimum = parse_resource_version(&opts.resource_version)?;
    let continuing = store.paging && !opts.continue_token.is_empty();
    let mut key = key_prefix.to_owned();
    if continuing {
        let (start, rv) = continue_token::decode(&opts.continue_token, key_prefix)?;
        if !opts.resource_version.is_empty() && opts.resource_version != "0" {
            return Err(StorageError::invalid_argument(
                "specifying resource version is not allowed when using continue",
            ));
        }
        options = options.with_range(prefix_range_end(key_prefix));
        key = start;
        // rv < 0 asks for the latest revision.
        if rv > 0 {
            options = options.with_revision(rv);
            returned_rv = rv;
        }
    } else if paging {
        if minimum > 0 {
            options = options.with_revision(minimum);
        }
        returned_rv = minimum;
        options = options.with_range(prefix_range_end(key_prefix));
    } else {
        options = options.with_prefix();
    }

    let mut items = Vec::new();
    let mut last_key: Option<String> = None;
    let mut has_more;
    // etcd's count of the keys left in the last range read, as Go's `count`.
    let mut count;
    loop {
        let resp = match store.range(&key, options.clone()).await {
            Ok(resp) => resp,
            Err(e) if e.code == Code::Expired => return Err(expired(continuing)),
            // A revision etcd has not reached: say so as for any other read.
            Err(e) if e.message.contains("required revision is a future revision") => {
                let current = store.range(key_prefix, count_only()).await?;
                validate_minimum_resource_version(returned_rv, revision(&current))?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        has_more = resp.more();
        count = resp.count();
        if resp.kvs().is_empty() && has_more {
            return Err(StorageError::internal(
                "no results were found, but etcd indicated there were more values remaining",
            ));
        }
        for kv in resp.kvs() {
            if paging && items.len() as i64 >= opts.limit {
                has_more = true;
                break;
            }
            let k = String::from_utf8_lossy(kv.key()).into_owned();
            // Today's Kubernetes fails the list rather than hide an object.
            items.push(
                store
                    .decode(&k, kv.value(), kv.mod_revision())
                    .await?
                    .object,
            );
            last_key = Some(k);
        }
        if returned_rv == 0 {
            returned_rv = revision(&resp);
            validate_minimum_resource_version(minimum, returned_rv)?;
        }
        if !has_more || !paging || items.len() as i64 >= opts.limit {
            break;
        }
        // Pin the following pages to the revision of the first.
        options = options.with_revision(returned_rv);
        key = format!("{}\0", last_key.as_deref().unwrap_or(key_prefix));
    }
    let (continue_token, remaining_item_count) = match (has_more, last_key) {
        (true, Some(last)) => (
            continue_token::encode(&format!("{last}\0"), key_prefix, returned_rv)?,
            // Go's PrepareContinueToken: the count less the page size.
            Some(count - opts.limit),
        ),
        _ => (String::new(), None),
    };
    Ok(ListResult {
        items,
        resource_version: returned_rv,
        continue_token,
        remaining_item_count,
    })
}
