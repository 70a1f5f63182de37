export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

export type Database = {
  public: {
    Tables: {
      abuse_reports: {
        Row: {
          created_at: string
          details: string
          document_id: string
          id: string
          reason: string
          reporter_id: string | null
          resolution_note: string | null
          resolved_at: string | null
          resolved_by: string | null
          status: string
        }
        Insert: {
          created_at?: string
          details?: string
          document_id: string
          id?: string
          reason: string
          reporter_id?: string | null
          resolution_note?: string | null
          resolved_at?: string | null
          resolved_by?: string | null
          status?: string
        }
        Update: {
          created_at?: string
          details?: string
          document_id?: string
          id?: string
          reason?: string
          reporter_id?: string | null
          resolution_note?: string | null
          resolved_at?: string | null
          resolved_by?: string | null
          status?: string
        }
        Relationships: [
          {
            foreignKeyName: "abuse_reports_document_id_fkey"
            columns: ["document_id"]
            isOneToOne: false
            referencedRelation: "documents"
            referencedColumns: ["id"]
          },
        ]
      }
      account_capabilities: {
        Row: {
          action: string
          anonymous_allowed: boolean
          capability: string
          enforced_by: string
          why: string
        }
        Insert: {
          action: string
          anonymous_allowed: boolean
          capability: string
          enforced_by: string
          why: string
        }
        Update: {
          action?: string
          anonymous_allowed?: boolean
          capability?: string
          enforced_by?: string
          why?: string
        }
        Relationships: []
      }
      ai_keys: {
        Row: {
          created_at: string
          expires_at: string | null
          id: string
          label: string | null
          last_used_at: string | null
          last4: string
          provider: string
          user_id: string
        }
        Insert: {
          created_at?: string
          expires_at?: string | null
          id?: string
          label?: string | null
          last_used_at?: string | null
          last4: string
          provider: string
          user_id: string
        }
        Update: {
          created_at?: string
          expires_at?: string | null
          id?: string
          label?: string | null
          last_used_at?: string | null
          last4?: string
          provider?: string
          user_id?: string
        }
        Relationships: []
      }
      ai_prices: {
        Row: {
          input_usd_per_mtok: number
          model: string
          output_usd_per_mtok: number
          provider: string
          updated_at: string
          usd_per_image: number
        }
        Insert: {
          input_usd_per_mtok: number
          model: string
          output_usd_per_mtok: number
          provider: string
          updated_at?: string
          usd_per_image?: number
        }
        Update: {
          input_usd_per_mtok?: number
          model?: string
          output_usd_per_mtok?: number
          provider?: string
          updated_at?: string
          usd_per_image?: number
        }
        Relationships: []
      }
      ai_requests: {
        Row: {
          chat_element_id: string | null
          created_at: string
          error: string | null
          id: string
          key_id: string | null
          max_tokens: number | null
          messages: NonNullable<Json>
          model: string
          provider: string
          result: Json | null
          status: string
          updated_at: string
          usage_id: string | null
          user_id: string
        }
        Insert: {
          chat_element_id?: string | null
          created_at?: string
          error?: string | null
          id?: string
          key_id?: string | null
          max_tokens?: number | null
          messages: NonNullable<Json>
          model: string
          provider: string
          result?: Json | null
          status?: string
          updated_at?: string
          usage_id?: string | null
          user_id?: string
        }
        Update: {
          chat_element_id?: string | null
          created_at?: string
          error?: string | null
          id?: string
          key_id?: string | null
          max_tokens?: number | null
          messages?: NonNullable<Json>
          model?: string
          provider?: string
          result?: Json | null
          status?: string
          updated_at?: string
          usage_id?: string | null
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "ai_requests_key_id_fkey"
            columns: ["key_id"]
            isOneToOne: false
            referencedRelation: "ai_keys"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "ai_requests_usage_id_fkey"
            columns: ["usage_id"]
            isOneToOne: false
            referencedRelation: "ai_usage"
            referencedColumns: ["id"]
          },
        ]
      }
      ai_usage: {
        Row: {
          budget_month: string
          cost_usd: number
          created_at: string
          endpoint: string
          error: string | null
          finished_at: string | null
          id: string
          images: number
          input_tokens: number
          latency_ms: number | null
          model: string
          output_tokens: number
          provider: string
          reserved_usd: number
          status: string
          streamed: boolean
          user_id: string
        }
        Insert: {
          budget_month?: string
          cost_usd?: number
          created_at?: string
          endpoint?: string
          error?: string | null
          finished_at?: string | null
          id?: string
          images?: number
          input_tokens?: number
          latency_ms?: number | null
          model: string
          output_tokens?: number
          provider: string
          reserved_usd?: number
          status?: string
          streamed?: boolean
          user_id: string
        }
        Update: {
          budget_month?: string
          cost_usd?: number
          created_at?: string
          endpoint?: string
          error?: string | null
          finished_at?: string | null
          id?: string
          images?: number
          input_tokens?: number
          latency_ms?: number | null
          model?: string
          output_tokens?: number
          provider?: string
          reserved_usd?: number
          status?: string
          streamed?: boolean
          user_id?: string
        }
        Relationships: []
      }
      audit_changes: {
        Row: {
          action: string
          actor: string
          actor_id: string | null
          columns: string[] | null
          created_at: string
          id: number
          row_id: string | null
          table_name: string
          user_id: string | null
        }
        Insert: {
          action: string
          actor: string
          actor_id?: string | null
          columns?: string[] | null
          created_at?: string
          id?: never
          row_id?: string | null
          table_name: string
          user_id?: string | null
        }
        Update: {
          action?: string
          actor?: string
          actor_id?: string | null
          columns?: string[] | null
          created_at?: string
          id?: never
          row_id?: string | null
          table_name?: string
          user_id?: string | null
        }
        Relationships: []
      }
      audit_log: {
        Row: {
          action: string
          created_at: string
          details: NonNullable<Json>
          id: number
          user_id: string | null
        }
        Insert: {
          action: string
          created_at?: string
          details?: NonNullable<Json>
          id?: never
          user_id?: string | null
        }
        Update: {
          action?: string
          created_at?: string
          details?: NonNullable<Json>
          id?: never
          user_id?: string | null
        }
        Relationships: []
      }
      backups: {
        Row: {
          ciphertext: string
          created_at: string
          id: string
          kdf: NonNullable<Json>
          nonce: string
          owner_id: string
          restored_from: number | null
          size_bytes: number | null
          version: number
        }
        Insert: {
          ciphertext: string
          created_at?: string
          id?: string
          kdf: NonNullable<Json>
          nonce: string
          owner_id: string
          restored_from?: number | null
          size_bytes?: never
          version: number
        }
        Update: {
          ciphertext?: string
          created_at?: string
          id?: string
          kdf?: NonNullable<Json>
          nonce?: string
          owner_id?: string
          restored_from?: number | null
          size_bytes?: never
          version?: number
        }
        Relationships: []
      }
      billing_customers: {
        Row: {
          created_at: string
          customer_id: string
          linked_by_event: string
          user_id: string
        }
        Insert: {
          created_at?: string
          customer_id: string
          linked_by_event: string
          user_id: string
        }
        Update: {
          created_at?: string
          customer_id?: string
          linked_by_event?: string
          user_id?: string
        }
        Relationships: []
      }
      billing_subscriptions: {
        Row: {
          cancel_at_period_end: boolean
          created_at: string
          current_period_end: string | null
          customer_id: string
          last_payment_failed_at: string | null
          plan_id: string
          price_ref: string | null
          state_at: string
          state_event_id: string
          state_source: string
          status: string
          subscription_id: string
          updated_at: string
          user_id: string | null
        }
        Insert: {
          cancel_at_period_end?: boolean
          created_at?: string
          current_period_end?: string | null
          customer_id: string
          last_payment_failed_at?: string | null
          plan_id: string
          price_ref?: string | null
          state_at: string
          state_event_id: string
          state_source: string
          status: string
          subscription_id: string
          updated_at?: string
          user_id?: string | null
        }
        Update: {
          cancel_at_period_end?: boolean
          created_at?: string
          current_period_end?: string | null
          customer_id?: string
          last_payment_failed_at?: string | null
          plan_id?: string
          price_ref?: string | null
          state_at?: string
          state_event_id?: string
          state_source?: string
          status?: string
          subscription_id?: string
          updated_at?: string
          user_id?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "billing_subscriptions_plan_id_fkey"
            columns: ["plan_id"]
            isOneToOne: false
            referencedRelation: "plans"
            referencedColumns: ["id"]
          },
        ]
      }
      document_kind_limits: {
        Row: {
          kind: string
          max_documents: number
          plan: string
        }
        Insert: {
          kind: string
          max_documents: number
          plan: string
        }
        Update: {
          kind?: string
          max_documents?: number
          plan?: string
        }
        Relationships: [
          {
            foreignKeyName: "document_kind_limits_kind_fkey"
            columns: ["kind"]
            isOneToOne: false
            referencedRelation: "document_kinds"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "document_kind_limits_plan_fkey"
            columns: ["plan"]
            isOneToOne: false
            referencedRelation: "plans"
            referencedColumns: ["id"]
          },
        ]
      }
      document_kinds: {
        Row: {
          allow_public: boolean
          created_at: string
          description: string
          id: string
          max_body_bytes: number
          refs: NonNullable<Json>
          text_search_config: unknown
          updated_at: string
          validator: string | null
        }
        Insert: {
          allow_public?: boolean
          created_at?: string
          description?: string
          id: string
          max_body_bytes?: number
          refs?: NonNullable<Json>
          text_search_config?: unknown
          updated_at?: string
          validator?: string | null
        }
        Update: {
          allow_public?: boolean
          created_at?: string
          description?: string
          id?: string
          max_body_bytes?: number
          refs?: NonNullable<Json>
          text_search_config?: unknown
          updated_at?: string
          validator?: string | null
        }
        Relationships: []
      }
      documents: {
        Row: {
          body: NonNullable<Json>
          change_xid: unknown
          created_at: string
          deleted_at: string | null
          fork_count: number
          forked_from: string | null
          id: string
          kind: string
          local_id: string | null
          owner_id: string
          search: unknown
          title: string
          updated_at: string
          version: number
          view_count: number
          visibility: string
        }
        Insert: {
          body?: NonNullable<Json>
          change_xid?: unknown
          created_at?: string
          deleted_at?: string | null
          fork_count?: number
          forked_from?: string | null
          id?: string
          kind: string
          local_id?: string | null
          owner_id?: string
          search?: unknown
          title?: string
          updated_at?: string
          version?: number
          view_count?: number
          visibility?: string
        }
        Update: {
          body?: NonNullable<Json>
          change_xid?: unknown
          created_at?: string
          deleted_at?: string | null
          fork_count?: number
          forked_from?: string | null
          id?: string
          kind?: string
          local_id?: string | null
          owner_id?: string
          search?: unknown
          title?: string
          updated_at?: string
          version?: number
          view_count?: number
          visibility?: string
        }
        Relationships: [
          {
            foreignKeyName: "documents_forked_from_fkey"
            columns: ["forked_from"]
            isOneToOne: false
            referencedRelation: "documents"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "documents_kind_fkey"
            columns: ["kind"]
            isOneToOne: false
            referencedRelation: "document_kinds"
            referencedColumns: ["id"]
          },
        ]
      }
      file_links: {
        Row: {
          bucket_id: string
          created_at: string
          id: string
          object_name: string
          owner_id: string
          ref_id: string
          ref_kind: string
        }
        Insert: {
          bucket_id: string
          created_at?: string
          id?: string
          object_name: string
          owner_id: string
          ref_id: string
          ref_kind: string
        }
        Update: {
          bucket_id?: string
          created_at?: string
          id?: string
          object_name?: string
          owner_id?: string
          ref_id?: string
          ref_kind?: string
        }
        Relationships: []
      }
      job_kinds: {
        Row: {
          backoff_base: string
          backoff_max: string
          created_at: string
          description: string
          kind: string
          max_attempts: number
          plan_limit_column: string | null
          updated_at: string
          user_enqueueable: boolean
        }
        Insert: {
          backoff_base?: string
          backoff_max?: string
          created_at?: string
          description?: string
          kind: string
          max_attempts?: number
          plan_limit_column?: string | null
          updated_at?: string
          user_enqueueable?: boolean
        }
        Update: {
          backoff_base?: string
          backoff_max?: string
          created_at?: string
          description?: string
          kind?: string
          max_attempts?: number
          plan_limit_column?: string | null
          updated_at?: string
          user_enqueueable?: boolean
        }
        Relationships: []
      }
      jobs: {
        Row: {
          attempts: number
          created_at: string
          finished_at: string | null
          id: string
          kind: string
          last_error: string | null
          locked_by: string | null
          locked_until: string | null
          max_attempts: number
          owner_id: string | null
          payload: NonNullable<Json>
          priority: number
          result: Json | null
          run_after: string
          status: string
          updated_at: string
        }
        Insert: {
          attempts?: number
          created_at?: string
          finished_at?: string | null
          id?: string
          kind: string
          last_error?: string | null
          locked_by?: string | null
          locked_until?: string | null
          max_attempts?: number
          owner_id?: string | null
          payload?: NonNullable<Json>
          priority?: number
          result?: Json | null
          run_after?: string
          status?: string
          updated_at?: string
        }
        Update: {
          attempts?: number
          created_at?: string
          finished_at?: string | null
          id?: string
          kind?: string
          last_error?: string | null
          locked_by?: string | null
          locked_until?: string | null
          max_attempts?: number
          owner_id?: string | null
          payload?: NonNullable<Json>
          priority?: number
          result?: Json | null
          run_after?: string
          status?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "jobs_kind_fkey"
            columns: ["kind"]
            isOneToOne: false
            referencedRelation: "job_kinds"
            referencedColumns: ["kind"]
          },
        ]
      }
      notifications: {
        Row: {
          created_at: string
          data: NonNullable<Json>
          id: string
          kind: string
          message: string
          read_at: string | null
          user_id: string
        }
        Insert: {
          created_at?: string
          data?: NonNullable<Json>
          id?: string
          kind: string
          message: string
          read_at?: string | null
          user_id: string
        }
        Update: {
          created_at?: string
          data?: NonNullable<Json>
          id?: string
          kind?: string
          message?: string
          read_at?: string | null
          user_id?: string
        }
        Relationships: []
      }
      plan_row_caps: {
        Row: {
          max_rows: number
          max_rows_anonymous: number | null
          plan: string
          table_name: string
        }
        Insert: {
          max_rows: number
          max_rows_anonymous?: number | null
          plan: string
          table_name: string
        }
        Update: {
          max_rows?: number
          max_rows_anonymous?: number | null
          plan?: string
          table_name?: string
        }
        Relationships: [
          {
            foreignKeyName: "plan_row_caps_plan_fkey"
            columns: ["plan"]
            isOneToOne: false
            referencedRelation: "plans"
            referencedColumns: ["id"]
          },
        ]
      }
      plans: {
        Row: {
          ai_key_session_hours: number
          ai_monthly_budget_usd: number
          ai_requests_per_window: number
          ai_window_seconds: number
          api_reads_per_hour: number
          api_writes_per_hour: number
          backup_max_bytes: number
          backup_versions_kept: number
          created_at: string
          documents_per_kind: number
          erasure_requests_per_day: number
          exports_per_day: number
          id: string
          imports_per_hour: number
          name: string
          room_elements_max: number
          storage_bytes: number
          telemetry_events_per_hour: number
          thumbnails_per_day: number
          updated_at: string
          uploads_per_hour: number
        }
        Insert: {
          ai_key_session_hours?: number
          ai_monthly_budget_usd?: number
          ai_requests_per_window: number
          ai_window_seconds?: number
          api_reads_per_hour?: number
          api_writes_per_hour?: number
          backup_max_bytes?: number
          backup_versions_kept?: number
          created_at?: string
          documents_per_kind: number
          erasure_requests_per_day?: number
          exports_per_day: number
          id: string
          imports_per_hour?: number
          name: string
          room_elements_max?: number
          storage_bytes: number
          telemetry_events_per_hour?: number
          thumbnails_per_day?: number
          updated_at?: string
          uploads_per_hour?: number
        }
        Update: {
          ai_key_session_hours?: number
          ai_monthly_budget_usd?: number
          ai_requests_per_window?: number
          ai_window_seconds?: number
          api_reads_per_hour?: number
          api_writes_per_hour?: number
          backup_max_bytes?: number
          backup_versions_kept?: number
          created_at?: string
          documents_per_kind?: number
          erasure_requests_per_day?: number
          exports_per_day?: number
          id?: string
          imports_per_hour?: number
          name?: string
          room_elements_max?: number
          storage_bytes?: number
          telemetry_events_per_hour?: number
          thumbnails_per_day?: number
          updated_at?: string
          uploads_per_hour?: number
        }
        Relationships: []
      }
      privacy_consents: {
        Row: {
          created_at: string
          telemetry: boolean
          updated_at: string
          user_id: string
        }
        Insert: {
          created_at?: string
          telemetry?: boolean
          updated_at?: string
          user_id: string
        }
        Update: {
          created_at?: string
          telemetry?: boolean
          updated_at?: string
          user_id?: string
        }
        Relationships: []
      }
      profiles: {
        Row: {
          avatar_url: string | null
          bio: string | null
          created_at: string
          display_name: string | null
          id: string
          is_anonymous: boolean
          plan: string
          storage_used: number
          updated_at: string
          username: string | null
        }
        Insert: {
          avatar_url?: string | null
          bio?: string | null
          created_at?: string
          display_name?: string | null
          id: string
          is_anonymous?: boolean
          plan?: string
          storage_used?: number
          updated_at?: string
          username?: string | null
        }
        Update: {
          avatar_url?: string | null
          bio?: string | null
          created_at?: string
          display_name?: string | null
          id?: string
          is_anonymous?: boolean
          plan?: string
          storage_used?: number
          updated_at?: string
          username?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "profiles_plan_fkey"
            columns: ["plan"]
            isOneToOne: false
            referencedRelation: "plans"
            referencedColumns: ["id"]
          },
        ]
      }
      room_chat_messages: {
        Row: {
          author_id: string | null
          completion_tokens: number | null
          content: string
          created_at: string
          element_id: string
          id: number
          model: string | null
          prompt_tokens: number | null
          realtime_id: string
          role: string
          room_id: string
        }
        Insert: {
          author_id?: string | null
          completion_tokens?: number | null
          content: string
          created_at?: string
          element_id: string
          id?: never
          model?: string | null
          prompt_tokens?: number | null
          realtime_id?: string
          role: string
          room_id: string
        }
        Update: {
          author_id?: string | null
          completion_tokens?: number | null
          content?: string
          created_at?: string
          element_id?: string
          id?: never
          model?: string | null
          prompt_tokens?: number | null
          realtime_id?: string
          role?: string
          room_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "room_chat_messages_element_in_room"
            columns: ["room_id", "element_id"]
            isOneToOne: false
            referencedRelation: "room_elements"
            referencedColumns: ["room_id", "id"]
          },
        ]
      }
      room_element_connections: {
        Row: {
          created_at: string
          created_by: string | null
          data: NonNullable<Json>
          from_element_id: string
          id: string
          label: string | null
          room_id: string
          to_element_id: string
        }
        Insert: {
          created_at?: string
          created_by?: string | null
          data?: NonNullable<Json>
          from_element_id: string
          id?: string
          label?: string | null
          room_id: string
          to_element_id: string
        }
        Update: {
          created_at?: string
          created_by?: string | null
          data?: NonNullable<Json>
          from_element_id?: string
          id?: string
          label?: string | null
          room_id?: string
          to_element_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "room_element_connections_from_in_room"
            columns: ["room_id", "from_element_id"]
            isOneToOne: false
            referencedRelation: "room_elements"
            referencedColumns: ["room_id", "id"]
          },
          {
            foreignKeyName: "room_element_connections_room_id_fkey"
            columns: ["room_id"]
            isOneToOne: false
            referencedRelation: "rooms"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "room_element_connections_to_in_room"
            columns: ["room_id", "to_element_id"]
            isOneToOne: false
            referencedRelation: "room_elements"
            referencedColumns: ["room_id", "id"]
          },
        ]
      }
      room_elements: {
        Row: {
          created_at: string
          created_by: string | null
          data: NonNullable<Json>
          height: number
          id: string
          image_path: string | null
          kind: string
          room_id: string
          updated_at: string
          updated_by: string | null
          version: number
          width: number
          x: number
          y: number
          z_index: number
        }
        Insert: {
          created_at?: string
          created_by?: string | null
          data?: NonNullable<Json>
          height?: number
          id?: string
          image_path?: string | null
          kind: string
          room_id: string
          updated_at?: string
          updated_by?: string | null
          version?: number
          width?: number
          x?: number
          y?: number
          z_index?: number
        }
        Update: {
          created_at?: string
          created_by?: string | null
          data?: NonNullable<Json>
          height?: number
          id?: string
          image_path?: string | null
          kind?: string
          room_id?: string
          updated_at?: string
          updated_by?: string | null
          version?: number
          width?: number
          x?: number
          y?: number
          z_index?: number
        }
        Relationships: [
          {
            foreignKeyName: "room_elements_room_id_fkey"
            columns: ["room_id"]
            isOneToOne: false
            referencedRelation: "rooms"
            referencedColumns: ["id"]
          },
        ]
      }
      room_invites: {
        Row: {
          created_at: string
          created_by: string | null
          expires_at: string
          id: string
          max_uses: number
          role: string
          room_id: string
          token_hash: string
          use_count: number
        }
        Insert: {
          created_at?: string
          created_by?: string | null
          expires_at: string
          id?: string
          max_uses?: number
          role: string
          room_id: string
          token_hash: string
          use_count?: number
        }
        Update: {
          created_at?: string
          created_by?: string | null
          expires_at?: string
          id?: string
          max_uses?: number
          role?: string
          room_id?: string
          token_hash?: string
          use_count?: number
        }
        Relationships: [
          {
            foreignKeyName: "room_invites_room_id_fkey"
            columns: ["room_id"]
            isOneToOne: false
            referencedRelation: "rooms"
            referencedColumns: ["id"]
          },
        ]
      }
      room_members: {
        Row: {
          id: string
          invited_by: string | null
          joined_at: string
          role: string
          room_id: string
          user_id: string
        }
        Insert: {
          id?: string
          invited_by?: string | null
          joined_at?: string
          role: string
          room_id: string
          user_id: string
        }
        Update: {
          id?: string
          invited_by?: string | null
          joined_at?: string
          role?: string
          room_id?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "room_members_room_id_fkey"
            columns: ["room_id"]
            isOneToOne: false
            referencedRelation: "rooms"
            referencedColumns: ["id"]
          },
        ]
      }
      room_templates: {
        Row: {
          connections: NonNullable<Json>
          created_at: string
          description: string
          elements: NonNullable<Json>
          id: string
          kind: string
          name: string
          owner_id: string | null
          updated_at: string
          visibility: string
        }
        Insert: {
          connections?: NonNullable<Json>
          created_at?: string
          description?: string
          elements?: NonNullable<Json>
          id?: string
          kind?: string
          name: string
          owner_id?: string | null
          updated_at?: string
          visibility?: string
        }
        Update: {
          connections?: NonNullable<Json>
          created_at?: string
          description?: string
          elements?: NonNullable<Json>
          id?: string
          kind?: string
          name?: string
          owner_id?: string | null
          updated_at?: string
          visibility?: string
        }
        Relationships: []
      }
      rooms: {
        Row: {
          created_at: string
          id: string
          owner_id: string
          settings: NonNullable<Json>
          title: string
          updated_at: string
        }
        Insert: {
          created_at?: string
          id?: string
          owner_id?: string
          settings?: NonNullable<Json>
          title: string
          updated_at?: string
        }
        Update: {
          created_at?: string
          id?: string
          owner_id?: string
          settings?: NonNullable<Json>
          title?: string
          updated_at?: string
        }
        Relationships: []
      }
      share_links: {
        Row: {
          created_at: string
          document_id: string
          expires_at: string | null
          id: string
          last_opened_at: string | null
          open_count: number
          owner_id: string
          revoked_at: string | null
          token_hash: string
        }
        Insert: {
          created_at?: string
          document_id: string
          expires_at?: string | null
          id?: string
          last_opened_at?: string | null
          open_count?: number
          owner_id?: string
          revoked_at?: string | null
          token_hash: string
        }
        Update: {
          created_at?: string
          document_id?: string
          expires_at?: string | null
          id?: string
          last_opened_at?: string | null
          open_count?: number
          owner_id?: string
          revoked_at?: string | null
          token_hash?: string
        }
        Relationships: [
          {
            foreignKeyName: "share_links_document_id_fkey"
            columns: ["document_id"]
            isOneToOne: false
            referencedRelation: "documents"
            referencedColumns: ["id"]
          },
        ]
      }
      sync_conflicts: {
        Row: {
          base_version: number | null
          change_id: string
          client_body: Json | null
          client_deleted: boolean
          client_title: string | null
          created_at: string
          document_id: string
          id: string
          owner_id: string
          resolution: string | null
          resolved_at: string | null
          server_body: NonNullable<Json>
          server_deleted: boolean
          server_title: string
          server_version: number
          status: string
          strategy: string
        }
        Insert: {
          base_version?: number | null
          change_id: string
          client_body?: Json | null
          client_deleted?: boolean
          client_title?: string | null
          created_at?: string
          document_id: string
          id?: string
          owner_id: string
          resolution?: string | null
          resolved_at?: string | null
          server_body: NonNullable<Json>
          server_deleted?: boolean
          server_title: string
          server_version: number
          status?: string
          strategy: string
        }
        Update: {
          base_version?: number | null
          change_id?: string
          client_body?: Json | null
          client_deleted?: boolean
          client_title?: string | null
          created_at?: string
          document_id?: string
          id?: string
          owner_id?: string
          resolution?: string | null
          resolved_at?: string | null
          server_body?: NonNullable<Json>
          server_deleted?: boolean
          server_title?: string
          server_version?: number
          status?: string
          strategy?: string
        }
        Relationships: [
          {
            foreignKeyName: "sync_conflicts_document_id_fkey"
            columns: ["document_id"]
            isOneToOne: false
            referencedRelation: "documents"
            referencedColumns: ["id"]
          },
        ]
      }
      sync_receipts: {
        Row: {
          change_id: string
          created_at: string
          owner_id: string
          result: NonNullable<Json>
        }
        Insert: {
          change_id: string
          created_at?: string
          owner_id: string
          result: NonNullable<Json>
        }
        Update: {
          change_id?: string
          created_at?: string
          owner_id?: string
          result?: NonNullable<Json>
        }
        Relationships: []
      }
      telemetry_event_types: {
        Row: {
          created_at: string
          description: string
          name: string
        }
        Insert: {
          created_at?: string
          description: string
          name: string
        }
        Update: {
          created_at?: string
          description?: string
          name?: string
        }
        Relationships: []
      }
      telemetry_events: {
        Row: {
          id: number
          name: string
          occurred_at: string
          props: NonNullable<Json>
          received_at: string
          user_id: string
        }
        Insert: {
          id?: never
          name: string
          occurred_at: string
          props?: NonNullable<Json>
          received_at?: string
          user_id: string
        }
        Update: {
          id?: never
          name?: string
          occurred_at?: string
          props?: NonNullable<Json>
          received_at?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "telemetry_events_name_fkey"
            columns: ["name"]
            isOneToOne: false
            referencedRelation: "telemetry_event_types"
            referencedColumns: ["name"]
          },
        ]
      }
      upload_scans: {
        Row: {
          action: string | null
          bucket_id: string
          checked_at: string | null
          declared_type: string | null
          detected_type: string | null
          object_id: string
          object_name: string
          object_version: string | null
          owner_id: string
          quarantine_path: string | null
          reason: string | null
          state: string
          uploaded_at: string
        }
        Insert: {
          action?: string | null
          bucket_id: string
          checked_at?: string | null
          declared_type?: string | null
          detected_type?: string | null
          object_id: string
          object_name: string
          object_version?: string | null
          owner_id: string
          quarantine_path?: string | null
          reason?: string | null
          state?: string
          uploaded_at?: string
        }
        Update: {
          action?: string | null
          bucket_id?: string
          checked_at?: string | null
          declared_type?: string | null
          detected_type?: string | null
          object_id?: string
          object_name?: string
          object_version?: string | null
          owner_id?: string
          quarantine_path?: string | null
          reason?: string | null
          state?: string
          uploaded_at?: string
        }
        Relationships: []
      }
    }
    Views: {
      [_ in never]: never
    }
    Functions: {
      accept_room_invite: { Args: { p_token: string }; Returns: string }
      apply_template: {
        Args: { p_room_id: string; p_template_id: string }
        Returns: string[]
      }
      claim_merge_ticket: { Args: { p_ticket: string }; Returns: Json }
      create_merge_ticket: { Args: Record<PropertyKey, never>; Returns: Json }
      create_room_invite: {
        Args: {
          p_expires_in?: string
          p_max_uses?: number
          p_role?: string
          p_room_id: string
        }
        Returns: {
          expires_at: string
          invite_id: string
          token: string
        }[]
      }
      create_share_link: {
        Args: { p_document_id: string; p_expires_in_days?: number }
        Returns: Json
      }
      cron_fire: {
        Args: { p_due: string; p_name: string; p_next: string }
        Returns: string
      }
      cron_list: {
        Args: Record<PropertyKey, never>
        Returns: {
          description: string
          enabled: boolean
          job_kind: string
          last_job_id: string
          last_run_at: string
          name: string
          next_run_at: string
          payload: Json
          schedule: string
        }[]
      }
      cron_run_now: { Args: { p_name: string }; Returns: string }
      cron_set_next: {
        Args: { p_expected: string; p_name: string; p_next: string }
        Returns: boolean
      }
      cron_set_schedule: {
        Args: { p_enabled?: boolean; p_name: string; p_schedule: string }
        Returns: {
          description: string
          enabled: boolean
          job_kind: string
          last_job_id: string
          last_run_at: string
          name: string
          next_run_at: string
          payload: Json
          schedule: string
        }[]
      }
      delete_document: {
        Args: { p_id: string }
        Returns: {
          body: NonNullable<Json>
          change_xid: unknown
          created_at: string
          deleted_at: string | null
          fork_count: number
          forked_from: string | null
          id: string
          kind: string
          local_id: string | null
          owner_id: string
          search: unknown
          title: string
          updated_at: string
          version: number
          view_count: number
          visibility: string
        }
        SetofOptions: {
          from: "*"
          to: "documents"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      enqueue_job: { Args: { kind: string; payload?: Json }; Returns: string }
      explore: {
        Args: {
          p_after?: string
          p_kind: string
          p_limit?: number
          p_query?: string
          p_sort?: string
        }
        Returns: Json
      }
      fork_document: {
        Args: {
          p_document_id: string
          p_share_token?: string
          p_title?: string
        }
        Returns: {
          body: NonNullable<Json>
          change_xid: unknown
          created_at: string
          deleted_at: string | null
          fork_count: number
          forked_from: string | null
          id: string
          kind: string
          local_id: string | null
          owner_id: string
          search: unknown
          title: string
          updated_at: string
          version: number
          view_count: number
          visibility: string
        }
        SetofOptions: {
          from: "*"
          to: "documents"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      get_backup: { Args: { p_version?: number }; Returns: Json }
      import_local: { Args: { p_library: Json }; Returns: Json }
      ingest_telemetry: { Args: { events: Json }; Returns: number }
      job_claim: {
        Args: {
          p_kinds: string[]
          p_lease: string
          p_limit: number
          p_worker: string
        }
        Returns: {
          attempts: number
          created_at: string
          finished_at: string | null
          id: string
          kind: string
          last_error: string | null
          locked_by: string | null
          locked_until: string | null
          max_attempts: number
          owner_id: string | null
          payload: NonNullable<Json>
          priority: number
          result: Json | null
          run_after: string
          status: string
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "jobs"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      job_claim_id: {
        Args: { p_id: string; p_lease: string; p_worker: string }
        Returns: {
          attempts: number
          created_at: string
          finished_at: string | null
          id: string
          kind: string
          last_error: string | null
          locked_by: string | null
          locked_until: string | null
          max_attempts: number
          owner_id: string | null
          payload: NonNullable<Json>
          priority: number
          result: Json | null
          run_after: string
          status: string
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "jobs"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      job_complete: {
        Args: { p_id: string; p_result?: Json; p_worker: string }
        Returns: string
      }
      job_complete_many: {
        Args: { p_ids: string[]; p_results?: Json[]; p_worker: string }
        Returns: string[]
      }
      job_enqueue: {
        Args: {
          p_kind: string
          p_owner?: string
          p_payload: Json
          p_priority?: number
          p_run_after?: string
        }
        Returns: string
      }
      job_fail: {
        Args: {
          p_error: string
          p_id: string
          p_retry?: boolean
          p_worker: string
        }
        Returns: string
      }
      job_fail_many: {
        Args: {
          p_errors: string[]
          p_ids: string[]
          p_retry?: boolean[]
          p_worker: string
        }
        Returns: {
          id: string
          status: string
        }[]
      }
      job_heartbeat: {
        Args: { p_id: string; p_lease: string; p_worker: string }
        Returns: string
      }
      job_release: { Args: { p_id: string; p_worker: string }; Returns: string }
      job_retry: { Args: { p_id: string }; Returns: string }
      leave_room: { Args: { p_room_id: string }; Returns: undefined }
      link_document_file: {
        Args: {
          p_bucket_id: string
          p_document_id: string
          p_object_name: string
        }
        Returns: {
          bucket_id: string
          created_at: string
          id: string
          object_name: string
          owner_id: string
          ref_id: string
          ref_kind: string
        }
        SetofOptions: {
          from: "*"
          to: "file_links"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      list_cleanups: {
        Args: Record<PropertyKey, never>
        Returns: {
          description: string
          function_name: string
          task: string
        }[]
      }
      moderation_report: { Args: { p_report_id: string }; Returns: Json }
      moderation_reports: {
        Args: { p_limit?: number; p_status?: string }
        Returns: Json
      }
      moderation_resolve_report: {
        Args: {
          p_action: string
          p_moderator?: string
          p_note?: string
          p_report_id: string
        }
        Returns: Json
      }
      my_profile: {
        Args: Record<PropertyKey, never>
        Returns: {
          avatar_url: string | null
          bio: string | null
          created_at: string
          display_name: string | null
          id: string
          is_anonymous: boolean
          plan: string
          storage_used: number
          updated_at: string
          username: string | null
        }[]
        SetofOptions: {
          from: "*"
          to: "profiles"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      open_share: { Args: { p_token: string }; Returns: Json }
      public_profile: {
        Args: { p_limit?: number; p_username: string }
        Returns: Json
      }
      request_account_deletion: {
        Args: Record<PropertyKey, never>
        Returns: string
      }
      request_export: { Args: Record<PropertyKey, never>; Returns: string }
      resolve_conflict: {
        Args: {
          p_body?: Json
          p_conflict_id: string
          p_resolution: string
          p_title?: string
        }
        Returns: {
          body: NonNullable<Json>
          change_xid: unknown
          created_at: string
          deleted_at: string | null
          fork_count: number
          forked_from: string | null
          id: string
          kind: string
          local_id: string | null
          owner_id: string
          search: unknown
          title: string
          updated_at: string
          version: number
          view_count: number
          visibility: string
        }
        SetofOptions: {
          from: "*"
          to: "documents"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      restore_backup: {
        Args: { p_if_version: number; p_version: number }
        Returns: Json
      }
      revoke_share_link: { Args: { p_id: string }; Returns: undefined }
      run_cleanup: {
        Args: { p_batch_size: number; p_dry_run: boolean; p_task: string }
        Returns: {
          item: string
        }[]
      }
      set_privacy_consent: {
        Args: { telemetry: boolean }
        Returns: {
          created_at: string
          telemetry: boolean
          updated_at: string
          user_id: string
        }
        SetofOptions: {
          from: "*"
          to: "privacy_consents"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      sync_pull: {
        Args: { p_cursor?: string; p_limit?: number }
        Returns: Json
      }
      sync_push: {
        Args: { p_changes: Json; p_strategy?: string }
        Returns: Json
      }
      transfer_room_ownership: {
        Args: { p_new_owner: string; p_room_id: string }
        Returns: undefined
      }
      upload_backup: {
        Args: {
          p_ciphertext: string
          p_if_version: number
          p_kdf: Json
          p_nonce: string
        }
        Returns: Json
      }
    }
    Enums: {
      [_ in never]: never
    }
    CompositeTypes: {
      [_ in never]: never
    }
  }
}

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends (DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never) = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends (PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never) = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never

export const Constants = {
  public: {
    Enums: {},
  },
} as const

