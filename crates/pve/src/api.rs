//! One typed async method per endpoint, on [`Client`].
//!
//! Why thin: the request is built by the pure function in [`crate::endpoints`] that shares
//! the method's name, and the transport does the rest. `get_opt`-style methods return
//! `Ok(None)` where absence is a normal answer (a VM that does not exist yet).

use serde_json::Value;

use crate::client::{Client, decode};
use crate::endpoints::{self, CloneOptions, MigrateOptions, PowerAction, ResizeTo, TaskFilter};
use crate::error::Error;
use crate::lenient;
use crate::request::Request;
use crate::types::{
    CloudinitEntry, ClusterResource, ClusterStatusEntry, ConfigUpdate, ExecStarted, ExecStatus,
    FileRead, GuestInterfaces, NodeSummary, ResourceType, StorageContent, StorageSummary,
    TaskLogLine, TaskStatus, TaskSummary, Upid, Version, VmConfig, VmStatus, VmSummary,
};

impl Client {
    async fn upid(&self, request: &Request) -> Result<Upid, Error> {
        self.call(request).await
    }

    /// `GET /version`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn version(&self) -> Result<Version, Error> {
        self.call(&endpoints::version()).await
    }

    /// `GET /access/permissions`: the caller's effective privileges (`path -> privilege
    /// -> propagate`), for the token's own identity.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn permissions(
        &self,
    ) -> Result<std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>>, Error>
    {
        self.call(&endpoints::permissions()).await
    }

    /// `GET /nodes`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn nodes(&self) -> Result<Vec<NodeSummary>, Error> {
        self.call(&endpoints::nodes()).await
    }

    /// `GET /nodes/{node}/status` (raw: the shape differs between releases).
    ///
    /// # Errors
    /// Transport or API errors ([`Error`]).
    pub async fn node_status(&self, node: &str) -> Result<Value, Error> {
        self.execute(&endpoints::node_status(node)).await
    }

    /// `GET /cluster/resources[?type=]`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn cluster_resources(
        &self,
        filter: Option<ResourceType>,
    ) -> Result<Vec<ClusterResource>, Error> {
        self.call(&endpoints::cluster_resources(filter)).await
    }

    /// `GET /cluster/status`: the cluster (in a cluster) and each member with `online`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn cluster_status(&self) -> Result<Vec<ClusterStatusEntry>, Error> {
        self.call(&endpoints::cluster_status()).await
    }

    /// `GET /cluster/nextid`: the next free VMID (PVE returns it as a string). Racy between
    /// clients: a create/clone into it may still answer "already exists".
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn next_id(&self) -> Result<u64, Error> {
        let request = endpoints::next_id(None);
        let data = self.execute(&request).await?;
        lenient::value_as_u64(&data).ok_or_else(|| Error::Decode {
            method: request.method,
            path: request.path.clone(),
            reason: format!("nextid is not a number: {data}"),
            source: None,
        })
    }

    /// `GET /cluster/nextid?vmid=N`: whether `vmid` is free (a 400 naming `vmid` means taken).
    ///
    /// # Errors
    /// Transport or API errors other than "taken" ([`Error`]).
    pub async fn is_vmid_free(&self, vmid: u64) -> Result<bool, Error> {
        match self.execute(&endpoints::next_id(Some(vmid))).await {
            Ok(_) => Ok(true),
            Err(error) if error.status() == Some(400) && error.is_already_exists() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// `GET /nodes/{node}/qemu`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_list(&self, node: &str) -> Result<Vec<VmSummary>, Error> {
        self.call(&endpoints::vm_list(node)).await
    }

    /// `POST /nodes/{node}/qemu`: starts task `qmcreate`. Prefer
    /// [`Client::create_vm_and_wait`], which handles retries safely.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_create(
        &self,
        node: &str,
        vmid: u64,
        config: ConfigUpdate,
    ) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_create(node, vmid, config)).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/config`.
    ///
    /// # Errors
    /// Transport, API or decoding errors; a missing VM is [`Error::is_not_found`].
    pub async fn vm_config(&self, node: &str, vmid: u64) -> Result<VmConfig, Error> {
        self.call(&endpoints::vm_config(node, vmid, false)).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/config`, `None` when the VM does not exist.
    ///
    /// # Errors
    /// Transport, API or decoding errors other than "does not exist".
    pub async fn vm_config_opt(&self, node: &str, vmid: u64) -> Result<Option<VmConfig>, Error> {
        match self.vm_config(node, vmid).await {
            Ok(config) => Ok(Some(config)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/config`: synchronous update.
    ///
    /// # Errors
    /// Transport or API errors, e.g. `checksum mismatch` when a digest no longer matches.
    pub async fn vm_config_set(
        &self,
        node: &str,
        vmid: u64,
        update: ConfigUpdate,
    ) -> Result<(), Error> {
        self.execute(&endpoints::vm_config_set(node, vmid, update))
            .await
            .map(drop)
    }

    /// `POST /nodes/{node}/qemu/{vmid}/config`: asynchronous update (task `qmconfig`).
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_config_set_async(
        &self,
        node: &str,
        vmid: u64,
        update: ConfigUpdate,
    ) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_config_set_async(node, vmid, update))
            .await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/clone`: starts task `qmclone`. Prefer
    /// [`Client::clone_vm_and_wait`], which handles lock timeouts and retries safely.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_clone(
        &self,
        node: &str,
        source: u64,
        options: &CloneOptions,
    ) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_clone(node, source, options)).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/migrate`: starts task `qmigrate` on `node` (the
    /// source). When the task ends `OK` the VM lives on `options.target`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]); PVE refuses a running VM without
    /// `online` before the task starts.
    pub async fn vm_migrate(
        &self,
        node: &str,
        vmid: u64,
        options: &MigrateOptions,
    ) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_migrate(node, vmid, options)).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/template`: starts task `qmtemplate`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_template(&self, node: &str, vmid: u64) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_template(node, vmid)).await
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/resize`: `Some(task)` on PVE >= 8, `None` before.
    /// Prefer [`Client::grow_disk`], which never shrinks and is idempotent.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_resize(
        &self,
        node: &str,
        vmid: u64,
        disk: &str,
        size: ResizeTo,
        digest: Option<&str>,
    ) -> Result<Option<Upid>, Error> {
        let request = endpoints::vm_resize(node, vmid, disk, size, digest);
        let data = self.execute(&request).await?;
        decode(&request, data)
    }

    /// `DELETE /nodes/{node}/qemu/{vmid}`: starts task `qmdestroy`.
    ///
    /// # Errors
    /// Transport, API or decoding errors (e.g. `VM 150 is running - destroy failed`).
    pub async fn vm_delete(&self, node: &str, vmid: u64, purge: bool) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_delete(node, vmid, purge)).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/status/current`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_status(&self, node: &str, vmid: u64) -> Result<VmStatus, Error> {
        self.call(&endpoints::vm_status(node, vmid)).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/status/current`, `None` when the VM does not exist.
    ///
    /// # Errors
    /// Transport, API or decoding errors other than "does not exist".
    pub async fn vm_status_opt(&self, node: &str, vmid: u64) -> Result<Option<VmStatus>, Error> {
        match self.vm_status(node, vmid).await {
            Ok(status) => Ok(Some(status)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST /nodes/{node}/qemu/{vmid}/status/{start|stop|shutdown|reboot}`: starts the task.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_power(
        &self,
        node: &str,
        vmid: u64,
        action: PowerAction,
    ) -> Result<Upid, Error> {
        self.upid(&endpoints::vm_power(node, vmid, action)).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/agent/ping`.
    ///
    /// # Errors
    /// API errors while the agent is not up (`QEMU guest agent is not running`).
    pub async fn agent_ping(&self, node: &str, vmid: u64) -> Result<(), Error> {
        self.execute(&endpoints::agent_ping(node, vmid))
            .await
            .map(drop)
    }

    /// `GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces`.
    ///
    /// # Errors
    /// API errors while the agent is not up, decoding errors.
    pub async fn agent_interfaces(&self, node: &str, vmid: u64) -> Result<GuestInterfaces, Error> {
        self.call(&endpoints::agent_interfaces(node, vmid)).await
    }

    /// `POST /nodes/{node}/qemu/{vmid}/agent/exec`: starts a command, returns its pid.
    ///
    /// # Errors
    /// API errors while the agent is not up, decoding errors.
    pub async fn agent_exec(
        &self,
        node: &str,
        vmid: u64,
        command: &[&str],
        input: Option<&str>,
    ) -> Result<u64, Error> {
        let started: ExecStarted = self
            .call(&endpoints::agent_exec(node, vmid, command, input))
            .await?;
        Ok(started.pid)
    }

    /// `GET /nodes/{node}/qemu/{vmid}/agent/exec-status?pid=`.
    ///
    /// # Errors
    /// API or decoding errors ([`Error`]).
    pub async fn agent_exec_status(
        &self,
        node: &str,
        vmid: u64,
        pid: u64,
    ) -> Result<ExecStatus, Error> {
        self.call(&endpoints::agent_exec_status(node, vmid, pid))
            .await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/agent/file-read?file=`.
    ///
    /// # Errors
    /// API or decoding errors ([`Error`]).
    pub async fn agent_file_read(
        &self,
        node: &str,
        vmid: u64,
        file: &str,
    ) -> Result<FileRead, Error> {
        self.call(&endpoints::agent_file_read(node, vmid, file))
            .await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/cloudinit`: cloud-init keys and pending changes.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn vm_cloudinit(&self, node: &str, vmid: u64) -> Result<Vec<CloudinitEntry>, Error> {
        self.call(&endpoints::vm_cloudinit(node, vmid)).await
    }

    /// `GET /nodes/{node}/tasks`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn tasks(&self, node: &str, filter: &TaskFilter) -> Result<Vec<TaskSummary>, Error> {
        self.call(&endpoints::tasks(node, filter)).await
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`.
    ///
    /// # Errors
    /// Transport, API or decoding errors; briefly after dispatch a 400 "no such task".
    pub async fn task_status(&self, upid: &Upid) -> Result<TaskStatus, Error> {
        self.call(&endpoints::task_status(upid)).await
    }

    /// `GET /nodes/{node}/tasks/{upid}/log?start=&limit=`: lines and the total count.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn task_log(
        &self,
        upid: &Upid,
        start: u64,
        limit: u64,
    ) -> Result<Vec<TaskLogLine>, Error> {
        self.call(&endpoints::task_log(upid, start, limit)).await
    }

    /// The last `count` lines of a task log (one request for up to 10 000 lines).
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn task_log_tail(&self, upid: &Upid, count: u64) -> Result<Vec<TaskLogLine>, Error> {
        // PVE pages the log from the start; one large window is cheaper than learning the
        // total first, and failing tasks have short logs.
        let lines = self.task_log(upid, 0, 10_000).await?;
        let skip = lines
            .len()
            .saturating_sub(usize::try_from(count).unwrap_or(usize::MAX));
        Ok(lines.into_iter().skip(skip).collect())
    }

    /// `GET /nodes/{node}/storage[?content=]`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn storage_list(
        &self,
        node: &str,
        content: Option<&str>,
    ) -> Result<Vec<StorageSummary>, Error> {
        self.call(&endpoints::storage_list(node, content)).await
    }

    /// `GET /nodes/{node}/storage/{storage}/content[?content=]`.
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn storage_content(
        &self,
        node: &str,
        storage: &str,
        content: Option<&str>,
    ) -> Result<Vec<StorageContent>, Error> {
        self.call(&endpoints::storage_content(node, storage, content))
            .await
    }

    /// `POST /nodes/{node}/storage/{storage}/download-url`: starts task `download`, which
    /// PVE runs on the node (it fetches the URL, not this machine).
    ///
    /// # Errors
    /// Transport, API or decoding errors ([`Error`]).
    pub async fn download_url(
        &self,
        node: &str,
        storage: &str,
        download: &endpoints::DownloadUrl,
    ) -> Result<Upid, Error> {
        self.upid(&endpoints::download_url(node, storage, download))
            .await
    }
}
