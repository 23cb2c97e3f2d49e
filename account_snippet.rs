    /// The account (local user and device id) set in this database.
    pub(crate) fn account_raw(&self) -> Result<Option<(Vec<u8>, u32)>> {
        let user: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'account_user'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let device: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'account_device'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match (user, device) {
            (Some(user), Some(device)) => Ok(Some((
                user,
                u32::try_from(device).map_err(|_| Error::DatabaseCorrupt)?,
            ))),
            (None, None) => Ok(None),
            _ => Err(Error::DatabaseCorrupt),
        }
    }

    /// Sets the account at commit; fails with a conflict if another
    /// writer set it first.
    pub(crate) fn set_account_raw(&mut self, user: &[u8], device: u32) {
        self.account = Some((user.to_vec(), device));
    }

